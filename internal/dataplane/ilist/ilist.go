// Package ilist links elements into a doubly-linked list through a field of their own,
// so that adding one costs no allocation (container/list allocates an element each
// time). The hot path's registries use it: the streams tracked on a host (cluster) and
// what hangs on a request's context (reqctx). It does no locking: its users do.
package ilist

// Links is the field an element is listed through.
type Links[T any] struct {
	prev, next *T
}

// Elem is a pointer to an element that has Links.
type Elem[T any] interface {
	*T
	Links() *Links[T]
}

// List is a list of elements of type T (P is *T). The zero value is an empty list.
type List[T any, P Elem[T]] struct {
	head *T
	n    int
}

// Front is the most recently pushed element; nil when the list is empty.
func (l *List[T, P]) Front() *T { return l.head }

// Next is the element after e; nil at the end.
func (l *List[T, P]) Next(e *T) *T { return P(e).Links().next }

// Len is the number of elements.
func (l *List[T, P]) Len() int { return l.n }

// Push adds e (not in a list) at the front.
func (l *List[T, P]) Push(e *T) {
	le := P(e).Links()
	le.prev, le.next = nil, l.head
	if l.head != nil {
		P(l.head).Links().prev = e
	}
	l.head = e
	l.n++
}

// Remove takes e out of l; false when it was not in it.
func (l *List[T, P]) Remove(e *T) bool {
	le := P(e).Links()
	if le.prev == nil && l.head != e {
		return false
	}
	if le.prev != nil {
		P(le.prev).Links().next = le.next
	} else {
		l.head = le.next
	}
	if le.next != nil {
		P(le.next).Links().prev = le.prev
	}
	le.prev, le.next = nil, nil
	l.n--
	return true
}
