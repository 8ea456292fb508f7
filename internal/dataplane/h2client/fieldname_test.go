package h2client

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// The field names a connection remembers are the short ones requests repeat: requests
// carrying long, ever new names (a client may send names of tens of KiB, within
// max_request_headers_kb) leave no copy of them on the upstream connection for its
// lifetime.
func TestConnRemembersNoLongFieldNames(t *testing.T) {
	addr := startServer(t, 0, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	cc := dial(t, addr, Config{})
	for i := range namesMax {
		req := newReq(t.Context(), t, http.MethodGet, "http://"+addr+"/", nil)
		req.Header.Set(fmt.Sprintf("X-%04d-%s", i, strings.Repeat("N", 4<<10)), "v")
		if err := roundTripErr(cc, req); err != nil {
			t.Fatal(err)
		}
	}
	cc.wmu.Lock()
	kept := 0
	for k, v := range cc.names {
		kept += len(k) + len(v)
	}
	cc.wmu.Unlock()
	if kept > 64<<10 {
		t.Fatalf("the connection keeps %d KiB of field names after %d requests with a 4 KiB name each", kept>>10, namesMax)
	}
}
