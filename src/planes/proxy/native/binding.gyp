# Builds the proxy relay addon (TCP accept/connect/relay in native threads: epoll, splice).
# Linux only. Built by build.mjs in this folder (run from package.json's install script); the
# result is build/Release/tsvs_proxy.node, which src/planes/proxy/tcp-native.ts loads. When it
# is missing, the proxy plane uses its pure-JavaScript relay.
{
  "targets": [
    {
      "target_name": "tsvs_proxy",
      "sources": ["relay.cc"],
      "dependencies": ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api"],
      "defines": ["NAPI_VERSION=8"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "ldflags": ["-pthread"]
    }
  ]
}
