package cdc

import "unsafe"

// A Row holds its values as interfaces, and converting a string, an int64
// or a slice to an interface allocates a copy of it for the interface to
// point at (the runtime's convTstring, convT64, convTslice): a decoded row
// of twenty columns cost twenty small allocations, the largest share of
// the decoders' and the state stores' allocations. A boxer keeps those
// copies for one row in one slice per type, sized in advance, and makes
// each interface point at its copy there: the same interface values
// (same dynamic type, same value), a few allocations a row.
//
// It relies on the layout of an empty interface (a type word, then a data
// word pointing at the value), which the Go runtime has kept since Go 1.4
// and packages such as reflect2 rely on too. A boxed value is never written
// again: a slice that must grow leaves the earlier values where they are,
// still referenced by their interfaces.
type boxer struct {
	strs   []string
	ints   []int64
	slices [][]string
}

// newBoxer returns a boxer with room for the given numbers of strings,
// integers and string slices.
func newBoxer(strs, ints, slices int) boxer {
	var b boxer
	if strs > 0 {
		b.strs = make([]string, 0, strs)
	}
	if ints > 0 {
		b.ints = make([]int64, 0, ints)
	}
	if slices > 0 {
		b.slices = make([][]string, 0, slices)
	}
	return b
}

// eface is the layout of an empty interface.
type eface struct {
	typ, data unsafe.Pointer
}

func typeWord(v any) unsafe.Pointer { return (*eface)(unsafe.Pointer(&v)).typ }

var (
	stringType  = typeWord("")
	int64Type   = typeWord(int64(0))
	stringsType = typeWord([]string(nil))
)

// boxAt is the interface of dynamic type typ whose value is at p.
func boxAt(typ, p unsafe.Pointer) (v any) {
	e := (*eface)(unsafe.Pointer(&v))
	e.typ, e.data = typ, p
	return v
}

// str is any(s).
func (b *boxer) str(s string) any {
	b.strs = append(b.strs, s)
	return boxAt(stringType, unsafe.Pointer(&b.strs[len(b.strs)-1]))
}

// int is any(n).
func (b *boxer) int(n int64) any {
	b.ints = append(b.ints, n)
	return boxAt(int64Type, unsafe.Pointer(&b.ints[len(b.ints)-1]))
}

// strings is any(s).
func (b *boxer) strings(s []string) any {
	b.slices = append(b.slices, s)
	return boxAt(stringsType, unsafe.Pointer(&b.slices[len(b.slices)-1]))
}
