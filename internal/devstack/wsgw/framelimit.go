package wsgw

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"sync/atomic"
)

// coder/websocket limits whole messages but assembles frames out of sight.
// API Gateway also limits single frames (32 KiB), so the gateway watches the
// client's byte stream below the WebSocket library: frameWatcher parses
// frame headers as bytes pass through and records a data frame whose
// payload exceeds the limit. The connection closes it with 1009 as soon as
// the message that contains it has been read.

// hijackWatcher wraps the ResponseWriter so the hijacked connection's reads
// go through a frameWatcher.
type hijackWatcher struct {
	http.ResponseWriter
	watcher *frameWatcher
}

func (h hijackWatcher) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := h.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, http.ErrNotSupported
	}
	nc, brw, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	// Bytes the server already buffered belong to the stream too.
	buffered, _ := brw.Reader.Peek(brw.Reader.Buffered())
	h.watcher.src = io.MultiReader(bytes.NewReader(bytes.Clone(buffered)), nc)
	wc := &watchedConn{Conn: nc, watcher: h.watcher}
	brw.Reader.Reset(wc)
	return wc, brw, nil
}

type watchedConn struct {
	net.Conn
	watcher *frameWatcher
}

func (c *watchedConn) Read(p []byte) (int, error) { return c.watcher.Read(p) }

type frameWatcher struct {
	src      io.Reader
	maxFrame int64

	header    [14]byte // the longest header: 2 + 8 (length) + 4 (mask)
	headerLen int      // bytes of the current header seen so far
	remaining uint64   // payload bytes of the current frame still to pass
	oversized atomic.Bool
}

func (fw *frameWatcher) Read(p []byte) (int, error) {
	n, err := fw.src.Read(p)
	fw.observe(p[:n])
	return n, err
}

// Oversized reports whether a data frame over the limit has been seen.
func (fw *frameWatcher) Oversized() bool { return fw.oversized.Load() }

func (fw *frameWatcher) observe(b []byte) {
	for len(b) > 0 {
		if fw.remaining > 0 {
			skip := min(uint64(len(b)), fw.remaining)
			fw.remaining -= skip
			b = b[skip:]
			continue
		}
		fw.header[fw.headerLen] = b[0]
		fw.headerLen++
		b = b[1:]
		need, ok := fw.headerSize()
		if !ok || fw.headerLen < need {
			continue
		}
		fw.startFrame()
	}
}

// headerSize returns the full header length once the first two bytes are in.
func (fw *frameWatcher) headerSize() (int, bool) {
	if fw.headerLen < 2 {
		return 0, false
	}
	size := 2
	switch fw.header[1] & 0x7f {
	case 126:
		size += 2
	case 127:
		size += 8
	}
	if fw.header[1]&0x80 != 0 { // client frames are masked
		size += 4
	}
	return size, true
}

func (fw *frameWatcher) startFrame() {
	var length uint64
	switch l := fw.header[1] & 0x7f; l {
	case 126:
		length = uint64(binary.BigEndian.Uint16(fw.header[2:4]))
	case 127:
		length = binary.BigEndian.Uint64(fw.header[2:10])
	default:
		length = uint64(l)
	}
	opcode := fw.header[0] & 0x0f
	isData := opcode < 0x8 // continuation, text, binary
	if isData && length > uint64(fw.maxFrame) {
		fw.oversized.Store(true)
	}
	fw.remaining = length
	fw.headerLen = 0
}
