# SPDX-License-Identifier: AGPL-3.0-or-later
# fsc_warnings: the warning, hardening and sanitizer flags every target links.
add_library(fsc_warnings INTERFACE)
target_compile_definitions(fsc_warnings INTERFACE _GNU_SOURCE)
target_compile_options(fsc_warnings INTERFACE
  -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes
  -Wmissing-declarations -Wpointer-arith -Wformat=2 -Wwrite-strings
  -Wundef -Wimplicit-fallthrough -Wvla
  -fstack-protector-strong)
if(WERROR)
  target_compile_options(fsc_warnings INTERFACE -Werror)
endif()
if(NOT SANITIZE AND NOT CMAKE_BUILD_TYPE STREQUAL "Debug")
  target_compile_definitions(fsc_warnings INTERFACE _FORTIFY_SOURCE=2)
endif()
if(SANITIZE)
  target_compile_options(fsc_warnings INTERFACE
    -fsanitize=${SANITIZE} -fno-sanitize-recover=all -fno-omit-frame-pointer)
  target_link_options(fsc_warnings INTERFACE -fsanitize=${SANITIZE})
endif()
set(CMAKE_POSITION_INDEPENDENT_CODE ON)
