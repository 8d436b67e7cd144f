// Package ttlmap is a small map whose entries expire after a fixed time.
//
// plakar v1.1.4 imports go.omarpolo.com/ttlmap for the short-lived download
// links of its web UI. That module's host is not reachable through the Go
// module proxy here, so the build replaces it with this implementation of the
// same four calls (New, AutoExpire, Add, Get).
package ttlmap

import (
	"sync"
	"time"
)

type entry[V any] struct {
	value   V
	expires time.Time
}

// Map holds values for at most ttl after they were added.
type Map[K comparable, V any] struct {
	mu      sync.Mutex
	ttl     time.Duration
	entries map[K]entry[V]
}

// New returns an empty map whose entries live for ttl.
func New[K comparable, V any](ttl time.Duration) *Map[K, V] {
	return &Map[K, V]{ttl: ttl, entries: make(map[K]entry[V])}
}

// Add stores value under key, replacing any previous value.
func (m *Map[K, V]) Add(key K, value V) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.entries[key] = entry[V]{value: value, expires: time.Now().Add(m.ttl)}
}

// Get returns the value under key unless it is absent or expired.
func (m *Map[K, V]) Get(key K) (V, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.entries[key]
	if !ok || time.Now().After(e.expires) {
		var zero V
		return zero, false
	}
	return e.value, true
}

// AutoExpire starts a goroutine that drops expired entries every ttl.
func (m *Map[K, V]) AutoExpire() {
	go func() {
		for range time.Tick(m.ttl) {
			now := time.Now()
			m.mu.Lock()
			for k, e := range m.entries {
				if now.After(e.expires) {
					delete(m.entries, k)
				}
			}
			m.mu.Unlock()
		}
	}()
}
