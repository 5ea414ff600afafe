//go:build unix

package sqlstorageextension

import (
	"fmt"
	"os"
	"syscall"
)

// holdLiveness takes this replica's lock; it is held until release is called or the process ends.
func holdLiveness(dir, replicaID string) (release func(), err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(lockFile(dir, replicaID), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("another process uses `replica_id` %q on this database: %w", replicaID, err)
	}
	path := f.Name()
	return func() {
		_ = os.Remove(path) // while still locked: no other process can be reaping it
		_ = f.Close()
	}, nil
}

// dead reports whether the process holding owner's lock is gone: its lock file exists and can be
// locked. An owner without a lock file (an older collector) is never presumed dead.
func dead(dir, owner string) bool {
	f, err := os.OpenFile(lockFile(dir, owner), os.O_RDWR, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
		return false // alive
	}
	_ = os.Remove(f.Name())
	return true
}
