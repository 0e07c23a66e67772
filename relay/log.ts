// Structured logs: JSON lines (pino) on stderr, so stdout carries only the one "listening on" line. Never
// log a token, a header or an event body: callers pass only envelope facts (method, route, status, code,
// device id, counts, durations).
import { pino, type Logger } from 'pino';

export type { Logger };

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export function createLogger(level: LogLevel = 'info'): Logger {
  return pino(
    {
      level,
      base: { service: 'motebit-relay' },
      timestamp: pino.stdTimeFunctions.isoTime,
      // Belt and braces: should anything ever pass these fields, they are not written.
      redact: { paths: ['token', 'authorization', 'headers', 'body', 'events', '*.token', '*.authorization', '*.body'], censor: '[redacted]' },
    },
    pino.destination({ dest: 2, sync: true }),
  );
}
