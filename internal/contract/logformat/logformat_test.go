package logformat

import (
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	got, err := Parse(`[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH):20%" %RESPONSE_CODE% 100%% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%` + "\n")
	if err != nil {
		t.Fatal(err)
	}
	want := []Part{{Literal: "["}, {Op: "START_TIME"}, {Literal: `] "`}, {Op: "REQ", Arg: ":METHOD"}, {Literal: " "},
		{Op: "REQ", Arg: "X-ENVOY-ORIGINAL-PATH", Alt: ":PATH", Max: 20}, {Literal: `" `}, {Op: "RESPONSE_CODE"}, {Literal: " 100% "},
		{Op: "RESP", Arg: "X-ENVOY-UPSTREAM-SERVICE-TIME"}, {Literal: "\n"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Parse =\n%+v\nwant\n%+v", got, want)
	}
	if p, _ := Parse("%DURATION:3%"); len(p) != 1 || p[0].Max != 3 || !Single(p) {
		t.Errorf("%%DURATION:3%% = %+v", p)
	}
	if p, _ := Parse("took %DURATION%"); Single(p) {
		t.Error("a number inside text is Single")
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"%RESPONSE_CODE", `1: "%RESPONSE_CODE" is not closed`},
		{"a %DYNAMIC_METADATA(istio)%", "3: %DYNAMIC_METADATA(istio)%: operator DYNAMIC_METADATA is not one Lucid formats"},
		{"%REQ()%", "REQ needs a header name"},
		{"%RESP(content-type)%", "only x-envoy-upstream-service-time"},
		{"%DURATION(x)%", "DURATION takes no argument"},
		{"%REQ(a):x%", "want :MAX_LENGTH"},
		{"%REQ(a:b%", "( is not closed"},
		{strings.Repeat("a", MaxLength+1), "at most"},
	} {
		if _, err := Parse(tc.in); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%.30q) = %v; want %q", tc.in, err, tc.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"%START_TIME% %REQ(:PATH):10%", "%%", "%REQ(a?b)%", "%RESP(x-envoy-upstream-service-time)%", "%BYTES_SENT:x%", "%("} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		parts, err := Parse(s)
		if err != nil {
			return
		}
		for _, p := range parts {
			if (p.Op == "") == (p.Literal == "") {
				t.Fatalf("Parse(%q): part %+v is neither a literal nor an operator", s, p)
			}
			if p.Op != "" {
				if _, ok := Operators[p.Op]; !ok {
					t.Fatalf("Parse(%q): unknown operator %q accepted", s, p.Op)
				}
			}
		}
	})
}
