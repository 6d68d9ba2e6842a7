// Ctrl-C feedback while a training step runs.
//
// Node delivers SIGINT to JS listeners only when the event loop turns, i.e.
// between training steps (a step is one synchronous stretch of JS and
// kernels, seconds long on bigger models). So the first Ctrl-C looked
// ignored. watchInterrupt(message) chains a handler in front of libuv's: the
// first SIGINT writes `message` to stderr at once (write(2) is
// async-signal-safe) and passes the signal on to libuv, so the JS listener
// still stops the run after the step; a second SIGINT before that restores
// the default action and re-raises it, so the process ends at once (the
// checkpoints on disk are complete: they are written to a temporary name and
// renamed). unwatchInterrupt() puts libuv's handler back, if ours is still
// the one installed (libuv resets SIGINT itself when its last listener goes).
#include "interrupt.h"

#include <cstring>

#ifndef _WIN32
#include <csignal>
#include <unistd.h>
#endif

namespace untie {

#ifndef _WIN32
namespace {

char g_message[512];
size_t g_message_len = 0;
struct sigaction g_previous;
volatile sig_atomic_t g_installed = 0;
volatile sig_atomic_t g_seen = 0;

void on_sigint(int signum, siginfo_t* info, void* context) {
  if (g_seen) {
    signal(SIGINT, SIG_DFL);
    raise(SIGINT);
    return;
  }
  g_seen = 1;
  ssize_t ignored = write(2, g_message, g_message_len);
  (void)ignored;
  if (g_previous.sa_flags & SA_SIGINFO) {
    if (g_previous.sa_sigaction) g_previous.sa_sigaction(signum, info, context);
  } else if (g_previous.sa_handler != SIG_DFL && g_previous.sa_handler != SIG_IGN && g_previous.sa_handler) {
    g_previous.sa_handler(signum);
  } else if (g_previous.sa_handler == SIG_DFL) {
    // Nobody in JS listens: behave as if we were not here.
    signal(SIGINT, SIG_DFL);
    raise(SIGINT);
  }
}

}  // namespace
#endif

// watchInterrupt(message: string): boolean. Installs the handler; false where signals are not POSIX.
napi_value js_watchInterrupt(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_value result;
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok || argc < 1) {
    napi_throw_error(env, nullptr, "untie native watchInterrupt: expected a message");
    return nullptr;
  }
#ifdef _WIN32
  napi_get_boolean(env, false, &result);
  return result;
#else
  size_t len = 0;
  if (napi_get_value_string_utf8(env, argv[0], g_message, sizeof g_message, &len) != napi_ok) {
    napi_throw_error(env, nullptr, "untie native watchInterrupt: the message must be a string");
    return nullptr;
  }
  g_message_len = len;
  if (!g_installed) {
    struct sigaction action;
    std::memset(&action, 0, sizeof action);
    action.sa_sigaction = on_sigint;
    action.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&action.sa_mask);
    if (sigaction(SIGINT, &action, &g_previous) != 0) {
      napi_get_boolean(env, false, &result);
      return result;
    }
    g_installed = 1;
  }
  g_seen = 0;
  napi_get_boolean(env, true, &result);
  return result;
#endif
}

// unwatchInterrupt(): restores the handler that was there before, if ours is still installed.
napi_value js_unwatchInterrupt(napi_env env, napi_callback_info info) {
  (void)info;
#ifndef _WIN32
  if (g_installed) {
    struct sigaction current;
    if (sigaction(SIGINT, nullptr, &current) == 0 && (current.sa_flags & SA_SIGINFO) && current.sa_sigaction == on_sigint) {
      sigaction(SIGINT, &g_previous, nullptr);
    }
    g_installed = 0;
  }
#endif
  napi_value undefined;
  napi_get_undefined(env, &undefined);
  return undefined;
}

}  // namespace untie
