package zapslog

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// New returns a zap logger that forwards every entry at or above min to l. Zap's fields become
// slog attributes (sorted by key) and a named logger's name becomes the "logger" attribute.
func New(l *slog.Logger, min slog.Level) *zap.Logger {
	if l == nil {
		return zap.NewNop()
	}
	return zap.New(&core{l: l, min: min})
}

// ParseLevel parses etcd's level names (debug, info, warn, error, dpanic, panic, fatal),
// case-insensitively, into the slog level New filters on.
func ParseLevel(s string) (slog.Level, error) {
	var zl zapcore.Level
	if err := zl.UnmarshalText([]byte(strings.ToLower(s))); err != nil {
		return 0, fmt.Errorf("unknown log level %q (want debug, info, warn or error)", s)
	}
	return toSlog(zl), nil
}

func toSlog(l zapcore.Level) slog.Level {
	switch {
	case l <= zapcore.DebugLevel:
		return slog.LevelDebug
	case l == zapcore.InfoLevel:
		return slog.LevelInfo
	case l == zapcore.WarnLevel:
		return slog.LevelWarn
	default:
		return slog.LevelError
	}
}

type core struct {
	l     *slog.Logger
	min   slog.Level
	attrs []slog.Attr
}

func (c *core) Enabled(zl zapcore.Level) bool {
	lvl := toSlog(zl)
	return lvl >= c.min && c.l.Enabled(context.Background(), lvl)
}

func (c *core) With(fields []zapcore.Field) zapcore.Core {
	return &core{l: c.l, min: c.min, attrs: append(slices.Clip(c.attrs), attrsOf(fields)...)}
}

func (c *core) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *core) Write(e zapcore.Entry, fields []zapcore.Field) error {
	r := slog.NewRecord(e.Time, toSlog(e.Level), e.Message, 0)
	if e.LoggerName != "" {
		r.AddAttrs(slog.String("logger", e.LoggerName))
	}
	r.AddAttrs(c.attrs...)
	r.AddAttrs(attrsOf(fields)...)
	return c.l.Handler().Handle(context.Background(), r)
}

func (c *core) Sync() error { return nil }

func attrsOf(fields []zapcore.Field) []slog.Attr {
	if len(fields) == 0 {
		return nil
	}
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range fields {
		f.AddTo(enc)
	}
	keys := make([]string, 0, len(enc.Fields))
	for k := range enc.Fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	attrs := make([]slog.Attr, 0, len(keys))
	for _, k := range keys {
		attrs = append(attrs, slog.Any(k, enc.Fields[k]))
	}
	return attrs
}
