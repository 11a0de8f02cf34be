# Native code of the gateway itself (npm builds it with node-gyp on `npm ci`, like
# better-sqlite3's): edge/native/malloc-trim.c → build/Release/malloc_trim.node.
{
  "targets": [
    {
      "target_name": "malloc_trim",
      "sources": ["edge/native/malloc-trim.c"]
    }
  ]
}
