package wsproto

import (
	"encoding/binary"
	"math/bits"
	"sync"
)

// Payload buffers come from size-class pools so that a parser holds memory
// only while a message is in flight. Classes are powers of two from
// 1<<minClassShift (which fits any control frame) to 1<<maxClassShift;
// larger buffers are allocated directly and left to the garbage collector.
const (
	minClassShift = 7
	maxClassShift = 22
)

var bufPools [maxClassShift - minClassShift + 1]sync.Pool

// getBuf returns an empty buffer with capacity of at least n bytes.
func getBuf(n int) *[]byte {
	shift := minClassShift
	if n > 1<<minClassShift {
		shift = bits.Len(uint(n - 1))
	}
	if shift > maxClassShift {
		b := make([]byte, 0, n)
		return &b
	}
	if v := bufPools[shift-minClassShift].Get(); v != nil {
		return v.(*[]byte)
	}
	b := make([]byte, 0, 1<<shift)
	return &b
}

// putBuf returns b to its pool. Buffers whose capacity is not a pool class
// are dropped.
func putBuf(b *[]byte) {
	c := cap(*b)
	if c < 1<<minClassShift || c > 1<<maxClassShift || c&(c-1) != 0 {
		return
	}
	*b = (*b)[:0]
	bufPools[bits.Len(uint(c))-1-minClassShift].Put(b)
}

// maskBytes XORs b in place with the masking key, starting at key offset
// pos, and returns the key offset for the byte that follows b (RFC 6455
// section 5.3). Masking and unmasking are the same operation.
func maskBytes(key [4]byte, pos int, b []byte) int {
	next := (pos + len(b)) & 3
	if len(b) >= 8 {
		var k [8]byte
		for i := range k {
			k[i] = key[(pos+i)&3]
		}
		kw := binary.LittleEndian.Uint64(k[:])
		for len(b) >= 32 {
			binary.LittleEndian.PutUint64(b, binary.LittleEndian.Uint64(b)^kw)
			binary.LittleEndian.PutUint64(b[8:], binary.LittleEndian.Uint64(b[8:])^kw)
			binary.LittleEndian.PutUint64(b[16:], binary.LittleEndian.Uint64(b[16:])^kw)
			binary.LittleEndian.PutUint64(b[24:], binary.LittleEndian.Uint64(b[24:])^kw)
			b = b[32:]
		}
		for len(b) >= 8 {
			binary.LittleEndian.PutUint64(b, binary.LittleEndian.Uint64(b)^kw)
			b = b[8:]
		}
	}
	// Whole words leave the key offset unchanged.
	for i := range b {
		b[i] ^= key[(pos+i)&3]
	}
	return next
}
