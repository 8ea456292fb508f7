package pool

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/lucid-mesh/lucid/internal/dataplane/http1"
)

// syncBodyMax is the largest request body (with a known length) written on the caller's
// goroutine before the response is read. Longer or unknown-length bodies are written by a
// goroutine while the response is read, so an upstream that answers early (or streams its
// answer while it reads) never deadlocks against the proxy.
const syncBodyMax = 64 << 10

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// errBodyLength says the request body did not match its Content-Length.
var errBodyLength = errors.New("request body length differs from Content-Length")

// writeRequest writes req in HTTP/1.1 wire form: request line, Host, the headers as they
// are (no User-Agent is added), framing (Content-Length, or chunked when the length is
// unknown), body and trailers. The headers are listed's, in that order, when listed is
// not nil (RequestLister), then req.Header's. With stream set it flushes the headers and
// every piece of the body as it arrives (the body is read while the upstream may already
// answer); otherwise it does not flush.
func writeRequest(w *bufio.Writer, req *http.Request, listed []http1.Field, stream bool) error {
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	hasBody := req.Body != nil && req.Body != http.NoBody
	chunked := hasBody && req.ContentLength < 0
	if listed == nil || !writeListedHead(w, req, host, listed) {
		_, _ = w.WriteString(req.Method)
		_ = w.WriteByte(' ')
		writeRequestURI(w, req.URL)
		_, _ = w.WriteString(" HTTP/1.1\r\nHost: ")
		_, _ = w.WriteString(http1.SpaceLineBreaks(host))
		_, _ = w.WriteString("\r\n")
		for i := range listed { // a head writeListedHead did not take: field by field
			writeField(w, listed[i].Key, listed[i].Value)
		}
	}
	// The map's fields: all of them, or, beside a list, any that something put there
	// after all (none, as forward lists them: one length read).
	if listed == nil || len(req.Header) > 0 {
		for k, vv := range req.Header {
			switch k {
			case "Host", "Content-Length", "Transfer-Encoding", "Trailer":
				continue
			}
			for _, v := range vv {
				writeField(w, k, v)
			}
		}
	}
	switch {
	case chunked:
		_, _ = w.WriteString("Transfer-Encoding: chunked\r\n")
		if len(req.Trailer) > 0 {
			keys := make([]string, 0, len(req.Trailer))
			for k := range req.Trailer {
				keys = append(keys, k)
			}
			_, _ = w.WriteString("Trailer: " + strings.Join(keys, ",") + "\r\n")
		}
	case hasBody && req.ContentLength > 0:
		_, _ = w.WriteString("Content-Length: ")
		_, _ = w.WriteString(strconv.FormatInt(req.ContentLength, 10))
		_, _ = w.WriteString("\r\n")
	case methodWantsLength(req.Method):
		_, _ = w.WriteString("Content-Length: 0\r\n")
	}
	if req.Close {
		_, _ = w.WriteString("Connection: close\r\n")
	}
	if _, err := w.WriteString("\r\n"); err != nil {
		return err
	}
	if !hasBody {
		return nil
	}
	if stream {
		if err := w.Flush(); err != nil {
			return err
		}
	}
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	if !chunked && !stream {
		n, err := io.CopyBuffer(w, io.LimitReader(req.Body, req.ContentLength), *bp)
		if err != nil {
			return fmt.Errorf("request body: %w", err)
		}
		if n != req.ContentLength {
			return errBodyLength
		}
		return nil
	}
	buf := *bp
	var sent int64
	for {
		n, rerr := req.Body.Read(buf)
		if n > 0 {
			sent += int64(n)
			if chunked {
				_, _ = w.WriteString(strconv.FormatInt(int64(n), 16))
				_, _ = w.WriteString("\r\n")
			} else if sent > req.ContentLength {
				return errBodyLength
			}
			_, _ = w.Write(buf[:n])
			if chunked {
				_, _ = w.WriteString("\r\n")
			}
			if err := w.Flush(); err != nil {
				return err
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return fmt.Errorf("request body: %w", rerr)
		}
	}
	if !chunked {
		if sent != req.ContentLength {
			return errBodyLength
		}
		return nil
	}
	_, _ = w.WriteString("0\r\n")
	for k, vv := range req.Trailer {
		for _, v := range vv {
			_, _ = w.WriteString(k + ": " + http1.SpaceLineBreaks(v) + "\r\n")
		}
	}
	_, err := w.WriteString("\r\n")
	return err
}

// methodWantsLength: methods whose bodiless requests carry "Content-Length: 0" (as
// net/http writes them).
func methodWantsLength(m string) bool {
	return m == http.MethodPost || m == http.MethodPut || m == http.MethodPatch
}

// writeRequestURI writes u.RequestURI() piece by piece (no string is built for it).
func writeRequestURI(w *bufio.Writer, u *url.URL) {
	if u.Opaque != "" {
		_, _ = w.WriteString(u.RequestURI()) // rare: keep url's own rules
		return
	}
	p := u.EscapedPath()
	if p == "" {
		p = "/"
	}
	_, _ = w.WriteString(p)
	if u.ForceQuery || u.RawQuery != "" {
		_ = w.WriteByte('?')
		_, _ = w.WriteString(u.RawQuery)
	}
}

// writeField writes the field line "k: v" CRLF, its line breaks made spaces, composed in the
// buffer's free space when it fits: one copy into w rather than four.
func writeField(w *bufio.Writer, k, v string) {
	b := w.AvailableBuffer()
	if cap(b) < len(k)+len(v)+4 {
		_, _ = w.WriteString(k)
		_, _ = w.WriteString(": ")
		_, _ = w.WriteString(http1.SpaceLineBreaks(v))
		_, _ = w.WriteString("\r\n")
		return
	}
	b = http1.AppendSpaceLineBreaks(append(append(b, k...), ": "...), v)
	_, _ = w.Write(append(b, "\r\n"...))
}

// writeListedHead writes the request line, Host and the listed fields in one copy into
// w's free space, when the target is a path (not opaque), Host holds no CR or LF and they
// all fit there; false, with nothing written, otherwise.
func writeListedHead(w *bufio.Writer, req *http.Request, host string, listed []http1.Field) bool {
	u := req.URL
	if u.Opaque != "" || http1.HasLineBreak(host) {
		return false
	}
	p := u.EscapedPath()
	if p == "" {
		p = "/"
	}
	query := u.ForceQuery || u.RawQuery != ""
	n := len(req.Method) + len(p) + len(" HTTP/1.1\r\nHost: \r\n ") + len(host) + 1 + len(u.RawQuery)
	for i := range listed {
		n += len(listed[i].Key) + len(listed[i].Value) + 4
	}
	if n > w.Available() {
		return false
	}
	b := append(w.AvailableBuffer(), req.Method...)
	b = append(append(b, ' '), p...)
	if query {
		b = append(append(b, '?'), u.RawQuery...)
	}
	b = append(append(append(b, " HTTP/1.1\r\nHost: "...), host...), "\r\n"...)
	for i := range listed {
		b = append(append(append(append(b, listed[i].Key...), ": "...), listed[i].Value...), "\r\n"...)
	}
	_, _ = w.Write(b)
	return true
}
