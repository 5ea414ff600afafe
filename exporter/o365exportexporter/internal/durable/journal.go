package durable

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
)

// A journal file is the 8-byte magic, whose last byte is the version of the framing, followed by
// frames: the payload's length (4 bytes, little-endian), its CRC-32C (4 bytes, little-endian), the
// payload. What payloads mean is the caller's business.
const magic = "O365JNL\x01"

const (
	frameHeader = 8
	// MaxFrame bounds a frame's payload: a larger length can only be a torn or damaged header.
	MaxFrame = 1 << 30
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrNotJournal is returned by OpenJournal for a file that does not start with the magic.
var ErrNotJournal = errors.New("not a journal file of this version")

// Frame appends the frame of payload to dst.
func Frame(dst, payload []byte) []byte {
	return AppendFrame(dst, func(b []byte) []byte { return append(b, payload...) })
}

// AppendFrame appends a frame whose payload is what payload appends to the slice it is given, without
// copying the payload again.
func AppendFrame(dst []byte, payload func([]byte) []byte) []byte {
	start := len(dst)
	dst = payload(append(dst, make([]byte, frameHeader)...))
	p := dst[start+frameHeader:]
	binary.LittleEndian.PutUint32(dst[start:start+4], uint32(len(p)))
	binary.LittleEndian.PutUint32(dst[start+4:start+8], crc32.Checksum(p, castagnoli))
	return dst
}

// Journal is an append-only file of frames.
type Journal struct {
	path string
	size int64 // end of the last frame known to be on disk
}

// Path is where the journal lives.
func (j *Journal) Path() string { return j.path }

// Size is the journal's length up to its last complete frame.
func (j *Journal) Size() int64 { return j.size }

// CreateJournal writes a journal holding frames (made with Frame), replacing whatever was at path with
// WriteFile: a crash leaves the old file or the new one, whole.
func CreateJournal(path string, frames []byte) (*Journal, error) {
	data := make([]byte, 0, len(magic)+len(frames))
	data = append(append(data, magic...), frames...)
	if err := WriteFile(path, data, 0o640); err != nil {
		return nil, err
	}
	return &Journal{path: path, size: int64(len(data))}, nil
}

// Append writes frames (made with Frame) at the end of the journal and fsyncs it: when it returns nil
// they are on disk. When it fails, the file is cut back to its previous length so that a later append
// does not follow a partial frame; if even that fails, the error says so, and the caller should replace
// the journal with CreateJournal. After a failed fsync the file's content is not known: replacing it is
// the safe course in any case.
func (j *Journal) Append(frames []byte) error {
	if len(frames) == 0 {
		return nil
	}
	f, err := os.OpenFile(j.path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteAt(frames, j.size)
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		if terr := f.Truncate(j.size); terr != nil {
			err = errors.Join(err, fmt.Errorf("cannot cut the journal back to its last complete frame: %w", terr))
		}
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	j.size += int64(len(frames))
	return nil
}

// Remove deletes the journal (a missing file is not an error). The removal is not fsynced: a journal
// that comes back after a crash must describe a state its owner can rebuild.
func (j *Journal) Remove() error {
	if err := os.Remove(j.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// Contents is what OpenJournal read.
type Contents struct {
	// Frames are the payloads of the complete frames, in order.
	Frames [][]byte
	// Dropped is the number of bytes after the last complete frame — a frame whose append a crash cut
	// short (so it was never acknowledged), or damage — which the journal no longer holds.
	Dropped int64
}

// OpenJournal reads the journal at path and opens it for appending. Everything from the first frame
// that is incomplete or fails its checksum is dropped, and the file cut back (and fsynced) to the
// frames before it: frames cannot be found again after a damaged one.
func OpenJournal(path string) (*Journal, Contents, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, Contents{}, err
	}
	if len(raw) < len(magic) || !bytes.Equal(raw[:len(magic)], []byte(magic)) {
		// CreateJournal renames a complete file into place: a shorter or different one is not ours.
		return nil, Contents{}, fmt.Errorf("%s: %w", path, ErrNotJournal)
	}
	var c Contents
	off := len(magic)
	for off < len(raw) {
		payload, n := unframe(raw[off:])
		if n == 0 {
			break
		}
		c.Frames = append(c.Frames, payload)
		off += n
	}
	c.Dropped = int64(len(raw) - off)
	j := &Journal{path: path, size: int64(off)}
	if c.Dropped > 0 {
		if err := truncate(path, j.size); err != nil {
			return nil, c, fmt.Errorf("%s: cannot drop the %d bytes after the last complete frame: %w", path, c.Dropped, err)
		}
	}
	return j, c, nil
}

// unframe reads the frame at the start of b; n is 0 when b does not start with a complete, intact one.
func unframe(b []byte) (payload []byte, n int) {
	if len(b) < frameHeader {
		return nil, 0
	}
	size := binary.LittleEndian.Uint32(b[0:4])
	if size > MaxFrame || int64(size) > int64(len(b)-frameHeader) {
		return nil, 0
	}
	payload = b[frameHeader : frameHeader+int(size)]
	if crc32.Checksum(payload, castagnoli) != binary.LittleEndian.Uint32(b[4:8]) {
		return nil, 0
	}
	return payload, frameHeader + int(size)
}

func truncate(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if err := f.Truncate(size); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
