package forward

import "testing"

func TestHTTPToGRPCStatus(t *testing.T) {
	for code, want := range map[int]int{400: 13, 401: 16, 403: 7, 404: 12, 429: 14, 502: 14, 503: 14, 504: 14, 500: 2, 409: 2} {
		if got := httpToGRPCStatus(code); got != want {
			t.Errorf("httpToGRPCStatus(%d) = %d, want %d", code, got, want)
		}
	}
}

func TestGRPCPercentEncode(t *testing.T) {
	tests := []struct{ in, want string }{
		{"no healthy upstream", "no healthy upstream"},
		{"100% done", "100%25 done"},
		{"line\nbreak", "line%0Abreak"},
		{"é", "%C3%A9"},
	}
	for _, tt := range tests {
		if got := grpcPercentEncode(tt.in); got != tt.want {
			t.Errorf("grpcPercentEncode(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
