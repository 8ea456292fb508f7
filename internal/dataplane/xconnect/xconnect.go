// Package xconnect turns on HTTP/2 extended CONNECT (RFC 8441, WebSocket over HTTP/2) in
// Go's net/http for the lucid binary, so that the sidecar's HTTP/2 listeners accept
// :protocol and forward can bridge it to HTTP/1.1 upgrades (forward/xconnect.go).
//
// net/http reads the switch once, from the GODEBUG environment variable
// (http2xconnect=1), while it initialises; there is no http.Server option in Go 1.26 and
// it is not a //go:debug setting. This package sets the variable in its init. It imports
// only os, and Go initialises packages in import-path order among those whose
// dependencies are ready (Go 1.21+), so it always runs before net/http
// ("github.com/..." sorts before "net/http"). Restore puts the environment back as it
// was, so child processes (`lucid up` apps) do not inherit the setting; call it from any
// package that imports net/http (its init runs after net/http's).
package xconnect

import (
	"os"
	"strings"
)

const setting = "http2xconnect=1"

var (
	original    string
	hadOriginal bool
	changed     bool
)

func init() {
	original, hadOriginal = os.LookupEnv("GODEBUG")
	if strings.Contains(original, "http2xconnect=") {
		return // the user chose
	}
	v := setting
	if original != "" {
		v = original + "," + setting
	}
	changed = os.Setenv("GODEBUG", v) == nil
}

// Restore puts GODEBUG back as it was before init.
func Restore() {
	if !changed {
		return
	}
	changed = false
	if hadOriginal {
		_ = os.Setenv("GODEBUG", original)
	} else {
		_ = os.Unsetenv("GODEBUG")
	}
}
