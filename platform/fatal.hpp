// evflow — the one way evflow stops a process: a broken kernel assumption or a misuse
// that cannot be reported as an Error (DESIGN.md, "Errors and misuse").
#pragma once

namespace evflow::detail {

// Writes "evflow: fatal: <message>" to standard error with a raw write (usable in any
// context, including a forked child and a signal handler) and aborts.
[[noreturn]] void fatal(const char* message) noexcept;

}  // namespace evflow::detail
