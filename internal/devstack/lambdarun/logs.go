package lambdarun

import (
	"bytes"
	"io"
	"sync"
)

// maxLogLine caps how much of one unterminated line is buffered before it is
// written anyway: a function printing megabytes without a newline must not grow
// the stack's memory without bound. 256 KiB is CloudWatch's event size limit.
const maxLogLine = 256 << 10

// logSink serialises whole lines from every instance onto one writer, so lines
// from concurrent functions never interleave mid-line.
type logSink struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *logSink) writeLine(prefix string, line []byte) {
	buf := make([]byte, 0, len(prefix)+len(line)+1)
	buf = append(buf, prefix...)
	buf = append(buf, line...)
	buf = append(buf, '\n')
	s.mu.Lock()
	defer s.mu.Unlock()
	_, _ = s.w.Write(buf) // a failing log writer must not fail the invocation
}

// lineWriter is the stdout/stderr of one process: it buffers partial lines and
// hands complete ones, labelled "[Name] ", to the sink.
type lineWriter struct {
	sink   *logSink
	prefix string

	mu  sync.Mutex
	buf []byte
}

func newLineWriter(sink *logSink, name string) *lineWriter {
	return &lineWriter{sink: sink, prefix: "[" + name + "] "}
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.sink.writeLine(w.prefix, bytes.TrimSuffix(w.buf[:i], []byte{'\r'}))
		w.buf = w.buf[i+1:]
	}
	if len(w.buf) >= maxLogLine {
		w.sink.writeLine(w.prefix, w.buf)
		w.buf = nil
	}
	if len(w.buf) == 0 {
		w.buf = nil // let the backing array go once drained
	}
	return len(p), nil
}

// Flush writes a trailing unterminated line (the process has exited).
func (w *lineWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.sink.writeLine(w.prefix, w.buf)
		w.buf = nil
	}
}

// Platform writes a line on behalf of the platform (timeouts, crashes), the
// way Lambda adds its own lines to the function's log stream.
func (w *lineWriter) Platform(msg string) {
	w.Flush()
	w.sink.writeLine(w.prefix, []byte(msg))
}
