package testutil

import (
	"bufio"
	"strings"
	"testing"
)

// HeadLines reads an HTTP/1.1 head from br, up to and including its empty line, and
// returns its lines without their CRLF, in the order they came (what a test of the order
// of fields needs, which http.ReadResponse's map loses).
func HeadLines(t testing.TB, br *bufio.Reader) []string {
	t.Helper()
	var head []string
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading a head after %q: %v", head, err)
		}
		if line == "\r\n" {
			return head
		}
		head = append(head, strings.TrimSuffix(line, "\r\n"))
	}
}
