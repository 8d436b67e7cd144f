//go:build tools

// Package build pins the plakar release that `make setup` builds.
package build

import _ "github.com/PlakarKorp/plakar"
