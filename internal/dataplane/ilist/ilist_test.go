package ilist

import (
	"slices"
	"testing"
)

type item struct {
	v     int
	links Links[item]
}

func (i *item) Links() *Links[item] { return &i.links }

func values(l *List[item, *item]) []int {
	var out []int
	for e := l.Front(); e != nil; e = l.Next(e) {
		out = append(out, e.v)
	}
	return out
}

// Push, Remove from the front, the middle and the end, a second Remove, and no
// allocation for any of it.
func TestList(t *testing.T) {
	var l List[item, *item]
	items := []*item{{v: 1}, {v: 2}, {v: 3}, {v: 4}}
	for _, it := range items {
		l.Push(it)
	}
	if got := values(&l); !slices.Equal(got, []int{4, 3, 2, 1}) || l.Len() != 4 {
		t.Fatalf("list %v (len %d)", got, l.Len())
	}
	for _, it := range []*item{items[3], items[1], items[0]} { // front, middle, end
		if !l.Remove(it) {
			t.Fatalf("Remove(%d) said it was not listed", it.v)
		}
	}
	if l.Remove(items[1]) {
		t.Fatal("a second Remove said it was listed")
	}
	if got := values(&l); !slices.Equal(got, []int{3}) || l.Len() != 1 {
		t.Fatalf("list %v (len %d), want [3]", got, l.Len())
	}
	it := items[0]
	if n := testing.AllocsPerRun(100, func() { l.Push(it); l.Remove(it) }); n != 0 {
		t.Fatalf("%.0f allocations to push and remove", n)
	}
}
