module go.omarpolo.com/ttlmap

go 1.21
