// Ctrl-C feedback while JS is busy: see interrupt.cc.
#pragma once
#include <node_api.h>

namespace untie {
napi_value js_watchInterrupt(napi_env env, napi_callback_info info);
napi_value js_unwatchInterrupt(napi_env env, napi_callback_info info);
}  // namespace untie
