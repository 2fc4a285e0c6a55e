// Package zapslog lets etcd's client and embedded server, which log through zap, write to a
// *slog.Logger, so the command and tests control one logger and etcd stays quiet by default.
package zapslog
