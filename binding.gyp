{
  "targets": [
    {
      "target_name": "untie_native",
      "sources": [
        "native/addon.cc",
        "native/gemm.cc",
        "native/interrupt.cc",
        "native/ops.cc",
        "native/pool.cc",
        "native/simd.cc"
      ],
      "defines": ["NAPI_VERSION=8"],
      "cflags!": ["-O2"],
      "cflags_cc!": ["-O2"],
      "cflags": ["-O3", "-fno-math-errno", "-ffp-contract=off"],
      "cflags_cc": ["-O3", "-fno-math-errno", "-ffp-contract=off", "-fvisibility=hidden", "-Wno-psabi"],
      "xcode_settings": {
        "OTHER_CFLAGS": ["-O3", "-fno-math-errno", "-ffp-contract=off"]
      }
    }
  ]
}
