package ext

import (
	"os"
	"sync"

	"lokitelemetry/internal/envvars"
)

// Marker prefixes every diagnostic line; records drops such lines from extension
// records so a diagnostic is never shipped back in a loop.
const Marker = envvars.DIAG_MARKER

var (
	diagMu   sync.Mutex
	diagSaid = map[string]bool{}
	// diagOut is stderr; tests swap it to capture the lines.
	diagOut = func(b []byte) { _, _ = os.Stderr.Write(b) }
)

// Warn writes one marker-prefixed line to stderr; it never fails (a closed stderr must not kill us).
func Warn(message string) {
	diagMu.Lock()
	defer diagMu.Unlock()
	defer func() { _ = recover() }()
	diagOut([]byte(Marker + " " + message + "\n"))
}

// WarnOnce is Warn, only the first time key is seen (no log storms).
func WarnOnce(key, message string) {
	diagMu.Lock()
	said := diagSaid[key]
	diagSaid[key] = true
	diagMu.Unlock()
	if !said {
		Warn(message)
	}
}
