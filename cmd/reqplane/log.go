package main

import (
	"io"
	"log/slog"

	"github.com/reqplane/reqplane/internal/config"
)

// newLogger builds the process logger from DYN_LOG and DYN_LOGGING_JSONL, writing to w (stderr).
func newLogger(w io.Writer, c config.Log) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.Level}
	if c.JSON {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
