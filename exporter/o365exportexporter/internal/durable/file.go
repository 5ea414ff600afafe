// Package durable writes files that survive a crash: whole files replaced atomically (WriteFile), and
// append-only journals of frames (Journal) whose appends return once they are on disk, and whose frame
// a crash cut short is recognised and dropped when the journal is read back.
package durable

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
)

// tempRE matches the temporary files of WriteFile: ".<name>.tmp-<digits>".
var tempRE = regexp.MustCompile(`^\..+\.tmp-[0-9]+$`)

// IsTemporary tells whether a file name is one of WriteFile's temporary files, which a crash may leave.
func IsTemporary(name string) bool { return tempRE.MatchString(name) }

// WriteFile replaces the file at path with data, atomically: a temporary file in the same directory is
// written, given perm, fsynced, renamed over path, and the directory fsynced. A reader sees the old or
// the new content, never a part of one, and a crash leaves one of them (and perhaps the temporary file:
// IsTemporary). Missing directories are created (0750) and made durable.
func WriteFile(path string, data []byte, perm os.FileMode) (err error) {
	dir := filepath.Dir(path)
	if err := MkdirAll(dir); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return err
	}
	if err = tmp.Chmod(perm); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return SyncDir(dir)
}

// MkdirAll creates dir and its missing parents (0750), fsyncing each parent that gained an entry, so
// that a file created in dir stays reachable after a crash.
func MkdirAll(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := MkdirAll(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o750); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil
		}
		return err
	}
	return SyncDir(parent)
}

// SyncDir fsyncs a directory, making the creation, renaming and removal of its entries durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) { // some platforms cannot sync directories
		return err
	}
	return nil
}
