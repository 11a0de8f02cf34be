// malloc_trim(0) for Node: returns to the OS the pages of freed memory that glibc's
// allocator keeps inside its heaps. free() gives memory back only from the top of a heap;
// a freed chunk below a live one stays resident until malloc_trim walks the free lists
// and releases whole pages inside them (madvise). Node exposes no way to call it and no npm
// package does (a general FFI such as koffi could, at the price of an any-symbol native-call
// surface in the gateway); see malloc-trim.ts for when the gateway calls it and why.
#include <node_api.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

static napi_value Trim(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
#if defined(__GLIBC__)
  // 1: some memory was released; 0: nothing to release.
  napi_get_boolean(env, malloc_trim(0) == 1, &result);
#else
  // Other C libraries (musl) have no malloc_trim: report "not available" to the caller.
  napi_get_null(env, &result);
#endif
  return result;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  if (napi_create_function(env, "trim", NAPI_AUTO_LENGTH, Trim, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "trim", fn) != napi_ok) return NULL;
  return exports;
}
