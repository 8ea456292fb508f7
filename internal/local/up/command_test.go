package up

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSplitCommand(t *testing.T) {
	vars := map[string]string{
		"LUCID_APP_ADDRESS": "127.0.20.2",
		"LUCID_PROXY":       "http://127.0.10.2:15001",
		"SPACED":            "a b",
		"EMPTY":             "",
	}
	lookup := func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
	t.Setenv("LUCID_UP_TEST_FROM_ENV", "from-env")

	tests := []struct {
		line    string
		want    []string
		wantErr string
	}{
		{line: "", want: nil},
		{line: "   \t ", want: nil},
		{line: "lucid demo-app --listen $LUCID_APP_ADDRESS:9080 --name reviews",
			want: []string{"lucid", "demo-app", "--listen", "127.0.20.2:9080", "--name", "reviews"}},
		{line: "a ${LUCID_APP_ADDRESS}x b", want: []string{"a", "127.0.20.2x", "b"}},
		{line: "echo $SPACED", want: []string{"echo", "a b"}}, // expansions are not split again
		{line: `echo "$SPACED c"`, want: []string{"echo", "a b c"}},
		{line: `echo '$SPACED' "\$SPACED"`, want: []string{"echo", "$SPACED", "$SPACED"}},
		{line: `echo "" '' x`, want: []string{"echo", "", "", "x"}},
		{line: `echo $EMPTY`, want: []string{"echo", ""}},
		{line: `echo a\ b "q\"uote" 'it''s'`, want: []string{"echo", "a b", `q"uote`, "its"}},
		{line: `echo "back\\slash" "\n"`, want: []string{"echo", `back\slash`, `\n`}},
		{line: "echo $ 5$ $1", want: []string{"echo", "$", "5$", "$1"}},
		{line: "echo $LUCID_UP_TEST_FROM_ENV", want: []string{"echo", "from-env"}},
		{line: "echo héllo wörld", want: []string{"echo", "héllo", "wörld"}},
		{line: "echo $NOPE_NOT_SET_ANYWHERE", wantErr: "undefined variable $NOPE_NOT_SET_ANYWHERE"},
		{line: "echo ${NOPE_NOT_SET_ANYWHERE}", wantErr: "undefined variable $NOPE_NOT_SET_ANYWHERE"},
		{line: "echo ${BAD-NAME}", wantErr: "bad variable name ${BAD-NAME}"},
		{line: "echo ${LUCID", wantErr: "unterminated ${"},
		{line: "echo 'open", wantErr: "unterminated single quote"},
		{line: `echo "open`, wantErr: "unterminated double quote"},
		{line: `echo \`, wantErr: "trailing backslash"},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			got, err := SplitCommand(tt.line, lookup)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("SplitCommand(%q) = %q, %v; want error %q", tt.line, got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("SplitCommand(%q): %v", tt.line, err)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("SplitCommand(%q) = %q, want %q", tt.line, got, tt.want)
			}
		})
	}
}

func FuzzSplitCommand(f *testing.F) {
	for _, s := range []string{
		"lucid demo-app --listen $LUCID_APP_ADDRESS:9080",
		`a 'b c' "d $X e" f\ g ${X}`,
		`"unterminated`, "${", `\`, "$", "é ü",
	} {
		f.Add(s)
	}
	lookup := func(k string) (string, bool) { return "<" + k + ">", k == "X" }
	f.Fuzz(func(t *testing.T, line string) {
		if !utf8.ValidString(line) {
			return // command lines come from YAML, which is UTF-8
		}
		words, err := SplitCommand(line, lookup)
		if err != nil {
			return
		}
		// A line of plain words (no quoting or expansion characters) splits on blanks.
		if !strings.ContainsAny(line, `'"\$`) {
			if want := strings.FieldsFunc(line, isBlank); !slices.Equal(words, want) && (len(words) != 0 || len(want) != 0) {
				t.Fatalf("SplitCommand(%q) = %q, want %q", line, words, want)
			}
		}
		// Re-quoting every word in single quotes gives the same words back.
		var b strings.Builder
		for _, w := range words {
			if strings.ContainsRune(w, '\'') {
				return
			}
			b.WriteString(" '" + w + "'")
		}
		again, err := SplitCommand(b.String(), lookup)
		if err != nil || !slices.Equal(again, words) && (len(again) != 0 || len(words) != 0) {
			t.Fatalf("round trip of %q: %q, %v", words, again, err)
		}
	})
}
