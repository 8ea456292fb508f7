package up

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// SplitCommand splits an app command line (the lucid.dev/app annotation) into words the
// way a POSIX shell would, without running one: words are separated by blanks; 'single
// quotes' keep everything literally; "double quotes" keep blanks and expand variables,
// with \" \\ \$ escaped; outside quotes a backslash escapes the next character. $NAME and
// ${NAME} expand to lookup(NAME), then to the process environment; an undefined variable
// is an error that names it. Expanded text is never split again.
func SplitCommand(line string, lookup func(string) (string, bool)) ([]string, error) {
	var (
		words   []string
		cur     strings.Builder
		inWord  bool
		rs      = []rune(line)
		expand  func(i int) (int, error)
		resolve = func(name string) (string, error) {
			if v, ok := lookup(name); ok {
				return v, nil
			}
			if v, ok := os.LookupEnv(name); ok {
				return v, nil
			}
			return "", fmt.Errorf("undefined variable $%s", name)
		}
	)
	// expand reads a variable reference starting at rs[i] == '$' and returns the index
	// after it. A '$' not followed by a name is literal.
	expand = func(i int) (int, error) {
		j := i + 1
		if j < len(rs) && rs[j] == '{' {
			end := j + 1
			for end < len(rs) && rs[end] != '}' {
				end++
			}
			if end == len(rs) {
				return 0, errors.New("unterminated ${")
			}
			name := string(rs[j+1 : end])
			if !validName(name) {
				return 0, fmt.Errorf("bad variable name ${%s}", name)
			}
			v, err := resolve(name)
			if err != nil {
				return 0, err
			}
			cur.WriteString(v)
			return end + 1, nil
		}
		for j < len(rs) && isNameRune(rs[j], j == i+1) {
			j++
		}
		if j == i+1 {
			cur.WriteRune('$')
			return j, nil
		}
		v, err := resolve(string(rs[i+1 : j]))
		if err != nil {
			return 0, err
		}
		cur.WriteString(v)
		return j, nil
	}
	for i := 0; i < len(rs); {
		r := rs[i]
		switch {
		case isBlank(r):
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
			i++
		case r == '\'':
			inWord = true
			end := i + 1
			for end < len(rs) && rs[end] != '\'' {
				end++
			}
			if end == len(rs) {
				return nil, errors.New("unterminated single quote")
			}
			cur.WriteString(string(rs[i+1 : end]))
			i = end + 1
		case r == '"':
			inWord = true
			i++
			closed := false
			for i < len(rs) && !closed {
				switch c := rs[i]; {
				case c == '"':
					closed = true
					i++
				case c == '\\' && i+1 < len(rs) && strings.ContainsRune(`"\$`, rs[i+1]):
					cur.WriteRune(rs[i+1])
					i += 2
				case c == '$':
					n, err := expand(i)
					if err != nil {
						return nil, err
					}
					i = n
				default:
					cur.WriteRune(c)
					i++
				}
			}
			if !closed {
				return nil, errors.New("unterminated double quote")
			}
		case r == '\\':
			if i+1 >= len(rs) {
				return nil, errors.New("trailing backslash")
			}
			inWord = true
			cur.WriteRune(rs[i+1])
			i += 2
		case r == '$':
			inWord = true
			n, err := expand(i)
			if err != nil {
				return nil, err
			}
			i = n
		default:
			inWord = true
			cur.WriteRune(r)
			i++
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// isBlank reports whether r separates words (a shell's default IFS).
func isBlank(r rune) bool { return r == ' ' || r == '\t' || r == '\n' }

func isNameRune(r rune, first bool) bool {
	return r == '_' || (r >= 'A' && r <= 'Z') || (r >= 'a' && r <= 'z') || (!first && r >= '0' && r <= '9')
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if !isNameRune(r, i == 0) {
			return false
		}
	}
	return true
}
