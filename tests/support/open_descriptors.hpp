// Test support: how many descriptors this process has open, to show that something left
// none behind.
#pragma once

#if defined(__linux__)
#include <dirent.h>
#endif

namespace evflow::testing {

// The descriptors open in this process (Linux: the entries of /proc/self/fd), or -1 where
// they are not counted.
inline int open_descriptors() {
#if defined(__linux__)
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  int count = 0;
  while (const dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] != '.') ++count;
  }
  ::closedir(dir);
  return count - 1;  // the directory's own descriptor
#else
  return -1;
#endif
}

}  // namespace evflow::testing
