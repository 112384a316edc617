# Builds the frame I/O addon (AF_PACKET rings) for the packet data plane. Linux only.
# Built by build.mjs in this folder (run from package.json's install script); the result is
# build/Release/tsvs_frameio.node, which src/planes/packet/frame-io.ts loads.
{
  "targets": [
    {
      "target_name": "tsvs_frameio",
      "sources": ["frame_socket.cc"],
      "dependencies": ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api"],
      "defines": ["NAPI_VERSION=8"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "ldflags": ["-pthread"]
    }
  ]
}
