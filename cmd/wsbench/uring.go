//go:build linux

package main

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// uringSender sends one buffer to many sockets through an io_uring: a
// batch of sends per io_uring_enter instead of a write(2) each, which
// saves the system call's entry and exit (dear where the kernel's
// mitigations are on) but not the TCP work of each send. The ring is set
// up and driven here with the raw system calls: the io_uring library on
// the module proxy (giouring) does not link under Go 1.23 and later.
type uringSender struct {
	fd      int
	entries uint32   // sends per io_uring_enter, as asked (the ring may be larger)
	mem     [][]byte // the mapped rings, unmapped by close

	sqHead, sqTail *uint32
	sqMask         uint32
	sqArray        unsafe.Pointer
	sqes           unsafe.Pointer
	cqHead, cqTail *uint32
	cqMask         uint32
	cqes           unsafe.Pointer
}

// The kernel's io_uring ABI (linux/io_uring.h) that the sender uses.
const (
	sysIOURingSetup  = 425
	sysIOURingEnter  = 426
	ioringOffSQRing  = 0
	ioringOffCQRing  = 0x8000000
	ioringOffSQEs    = 0x10000000
	ioringFeatSingle = 1 << 0 // IORING_FEAT_SINGLE_MMAP
	ioringEnterGetEv = 1 << 0 // IORING_ENTER_GETEVENTS
	ioringOpSend     = 26
	sqeSize, cqeSize = 64, 16
)

type uringParams struct {
	sqEntries, cqEntries, flags, sqThreadCPU, sqThreadIdle, features, wqFd uint32
	resv                                                                   [3]uint32
	sqOff                                                                  struct {
		head, tail, ringMask, ringEntries, flags, dropped, array, resv1 uint32
		userAddr                                                        uint64
	}
	cqOff struct {
		head, tail, ringMask, ringEntries, overflow, cqes, flags, resv1 uint32
		userAddr                                                        uint64
	}
}

func newURingSender(entries int) (*uringSender, error) {
	var p uringParams
	fd, _, errno := syscall.Syscall(sysIOURingSetup, uintptr(entries), uintptr(unsafe.Pointer(&p)), 0)
	if errno != 0 {
		return nil, os.NewSyscallError("io_uring_setup", errno)
	}
	u := &uringSender{fd: int(fd), entries: uint32(entries)}
	mmap := func(off int64, size int) ([]byte, error) {
		b, err := unix.Mmap(u.fd, off, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
		if err != nil {
			u.close()
			return nil, os.NewSyscallError("mmap", err)
		}
		u.mem = append(u.mem, b)
		return b, nil
	}
	sqSize, cqSize := int(p.sqOff.array+p.sqEntries*4), int(p.cqOff.cqes+p.cqEntries*cqeSize)
	if p.features&ioringFeatSingle != 0 {
		sqSize = max(sqSize, cqSize)
	}
	sq, err := mmap(ioringOffSQRing, sqSize)
	if err != nil {
		return nil, err
	}
	cq := sq
	if p.features&ioringFeatSingle == 0 {
		if cq, err = mmap(ioringOffCQRing, cqSize); err != nil {
			return nil, err
		}
	}
	sqes, err := mmap(ioringOffSQEs, int(p.sqEntries*sqeSize))
	if err != nil {
		return nil, err
	}
	sb, cb := unsafe.Pointer(&sq[0]), unsafe.Pointer(&cq[0])
	u.sqHead, u.sqTail = (*uint32)(unsafe.Add(sb, p.sqOff.head)), (*uint32)(unsafe.Add(sb, p.sqOff.tail))
	u.sqMask = *(*uint32)(unsafe.Add(sb, p.sqOff.ringMask))
	u.sqArray = unsafe.Add(sb, p.sqOff.array)
	u.sqes = unsafe.Pointer(&sqes[0])
	u.cqHead, u.cqTail = (*uint32)(unsafe.Add(cb, p.cqOff.head)), (*uint32)(unsafe.Add(cb, p.cqOff.tail))
	u.cqMask = *(*uint32)(unsafe.Add(cb, p.cqOff.ringMask))
	u.cqes = unsafe.Add(cb, p.cqOff.cqes)
	return u, nil
}

func (u *uringSender) close() {
	for _, b := range u.mem {
		_ = unix.Munmap(b)
	}
	u.mem = nil
	if u.fd >= 0 {
		_ = unix.Close(u.fd)
		u.fd = -1
	}
}

// enter submits up to toSubmit entries and waits for minComplete
// completions. It returns how many entries the kernel took: it stops at
// the first it cannot start, without an error and without waiting.
func (u *uringSender) enter(toSubmit, minComplete uint32) (uint32, error) {
	for {
		r1, _, errno := syscall.Syscall6(sysIOURingEnter, uintptr(u.fd), uintptr(toSubmit), uintptr(minComplete), ioringEnterGetEv, 0, 0)
		switch errno {
		case 0:
			return uint32(r1), nil
		case syscall.EINTR, syscall.EAGAIN, syscall.EBUSY:
			continue
		default:
			return 0, os.NewSyscallError("io_uring_enter", errno)
		}
	}
}

// sendAll sends b to every socket in fds, counting each in w. A short
// send's rest is written with write(2), waiting for room. It fails only
// when the ring does; the ring is then unusable.
func (u *uringSender) sendAll(fds []int, b []byte, w *floorWrites) error {
	addr := uint64(uintptr(unsafe.Pointer(&b[0])))
	for len(fds) > 0 {
		n := uint32(min(len(fds), int(u.entries)))
		tail := atomic.LoadUint32(u.sqTail)
		if tail-atomic.LoadUint32(u.sqHead) != 0 {
			return errors.New("io_uring: submissions left over")
		}
		for i := range n {
			idx := (tail + i) & u.sqMask
			sqe := (*[sqeSize]byte)(unsafe.Add(u.sqes, uintptr(idx)*sqeSize))
			clear(sqe[:])
			sqe[0] = ioringOpSend
			*(*int32)(unsafe.Pointer(&sqe[4])) = int32(fds[i])
			*(*uint64)(unsafe.Pointer(&sqe[16])) = addr
			*(*uint32)(unsafe.Pointer(&sqe[24])) = uint32(len(b))
			*(*uint32)(unsafe.Pointer(&sqe[28])) = unix.MSG_DONTWAIT | unix.MSG_NOSIGNAL
			*(*uint64)(unsafe.Pointer(&sqe[32])) = uint64(i)
			*(*uint32)(unsafe.Add(u.sqArray, uintptr(idx)*4)) = idx
		}
		atomic.StoreUint32(u.sqTail, tail+n)
		for submitted, seen := uint32(0), uint32(0); seen < n; {
			// The kernel waits only when it took all it was given, and then
			// for every send still out.
			took, err := u.enter(n-submitted, n-seen)
			if err != nil {
				return err
			}
			submitted += took
			if took == 0 && submitted < n && atomic.LoadUint32(u.cqTail) == atomic.LoadUint32(u.cqHead) {
				return fmt.Errorf("io_uring: the kernel took %d of %d sends", submitted, n)
			}
			head, ctail := atomic.LoadUint32(u.cqHead), atomic.LoadUint32(u.cqTail)
			for ; head != ctail; head++ {
				cqe := unsafe.Add(u.cqes, uintptr(head&u.cqMask)*cqeSize)
				i, res := *(*uint64)(cqe), int(*(*int32)(unsafe.Add(cqe, 8)))
				switch {
				case i >= uint64(n):
					return fmt.Errorf("io_uring: completion for entry %d of %d", i, n)
				case res == len(b):
					w.writes.Add(1)
				case res >= 0 || res == -int(unix.EAGAIN):
					w.writeAll(fds[i], b[max(res, 0):])
				default:
					w.failed.Add(1)
				}
				seen++
			}
			atomic.StoreUint32(u.cqHead, head)
		}
		fds = fds[n:]
	}
	return nil
}
