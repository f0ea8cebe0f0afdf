# Cross-compiling mixq for aarch64 Linux on a Debian x86-64 host (scripts/check_aarch64.sh):
#   apt-get install gcc-aarch64-linux-gnu qemu-user, and the libraries for arm64
#   (dpkg --add-architecture arm64; libjansson-dev:arm64 libpcre2-dev:arm64
#   libicu-dev:arm64 libmicrohttpd-dev:arm64).
#   cmake -S . -B build-aarch64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake
# Tests then run through qemu-aarch64 (CMAKE_CROSSCOMPILING_EMULATOR), so a
# plain `ctest` works in the build folder (except the cli_*.sh tests, which
# start the aarch64 mixq binary themselves).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(MQ_CROSS_TRIPLE aarch64-linux-gnu)

if(NOT CMAKE_C_COMPILER)
  set(CMAKE_C_COMPILER ${MQ_CROSS_TRIPLE}-gcc)
endif()
if(CMAKE_C_COMPILER MATCHES "clang")
  set(CMAKE_C_COMPILER_TARGET ${MQ_CROSS_TRIPLE})
endif()

# GCC 12.2 for aarch64 (Debian 12's, native or cross) dies with an internal
# compiler error (vect_transform_reduction) when it vectorizes a reduction
# `m = fmax(m, fabs(float))` at -O2/-O3, which several tests contain; as a
# library call fmax is left alone. Harmless for other compilers.
set(CMAKE_C_FLAGS_INIT "-fno-builtin-fmax")

# Debian multiarch: the arm64 libraries live in /usr/lib/aarch64-linux-gnu,
# the cross C library in /usr/aarch64-linux-gnu.
set(CMAKE_FIND_ROOT_PATH /usr/${MQ_CROSS_TRIPLE} /usr/lib/${MQ_CROSS_TRIPLE})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)
# pkg-config: only the arm64 .pc files (plus the architecture-independent ones)
set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/${MQ_CROSS_TRIPLE}/pkgconfig:/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")

# Run target executables (tests, try_run) under qemu-user. The loader and C
# library come from the multiarch libc6:arm64 (/lib/ld-linux-aarch64.so.1,
# installed with the arm64 -dev packages) so that they match each other;
# qemu's -L /usr/aarch64-linux-gnu would pair the cross package's ld.so with
# the multiarch libc.so.6 when their versions differ, and threads then hang.
# That prefix is only used when there is no multiarch loader. qemu reads the
# emulated CPU from QEMU_CPU at run time: its default ("max") has the
# dot-product extension, QEMU_CPU=cortex-a57 plain NEON only.
find_program(MQ_QEMU qemu-${CMAKE_SYSTEM_PROCESSOR})
if(MQ_QEMU)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${MQ_QEMU})
  if(NOT EXISTS /lib/ld-linux-aarch64.so.1)
    list(APPEND CMAKE_CROSSCOMPILING_EMULATOR -L /usr/${MQ_CROSS_TRIPLE})
  endif()
endif()
