#include "models/common/input_file.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include "models/common/error.h"

namespace servesim {
namespace {

[[noreturn]] void fail(const std::string& path, const std::string& what, const std::string& reason) {
  throw InputFileError(path, "cannot open " + what + ": " + reason);
}

std::string errno_reason(int err) {
  if (err == ENOENT) return "not found";
  if (err == ENOTDIR) return "not found (a part of the path is not a directory)";
  return std::strerror(err);
}

void check_size(std::uint64_t size, const std::string& path, const std::string& what, std::uint64_t max_bytes) {
  if (size <= max_bytes) return;
  const std::string limit = max_bytes >= (std::uint64_t{1} << 30) ? fmt::format("{} GiB", max_bytes >> 30)
                                                                   : fmt::format("{} MiB", max_bytes >> 20);
  fail(path, what,
       fmt::format("is {:.1f} MiB, larger than the {} limit for {}", double(size) / double(1 << 20), limit,
                   max_bytes == kMaxDocumentBytes ? "whole-file inputs (TOML, JSON)" : "line-oriented inputs"));
}

// Refuses anything but a regular file of at most max_bytes.
void check_stat(const struct stat& st, const std::string& path, const std::string& what, std::uint64_t max_bytes) {
  if (S_ISDIR(st.st_mode)) fail(path, what, "is a directory");
  if (!S_ISREG(st.st_mode)) {
    const char* kind = S_ISFIFO(st.st_mode)   ? "a FIFO"
                       : S_ISCHR(st.st_mode)  ? "a character device"
                       : S_ISBLK(st.st_mode)  ? "a block device"
                       : S_ISSOCK(st.st_mode) ? "a socket"
                                              : "a special file";
    fail(path, what, std::string("is not a regular file (") + kind + ")");
  }
  check_size(static_cast<std::uint64_t>(st.st_size), path, what, max_bytes);
}

// An open descriptor of a checked regular file; closed on destruction.
class CheckedFile {
 public:
  CheckedFile(const std::string& path, const std::string& what, std::uint64_t max_bytes) {
    // stat first: opening a FIFO could block, opening a socket fails with a less helpful reason.
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) fail(path, what, errno_reason(errno));
    check_stat(st, path, what, max_bytes);
    // O_NONBLOCK: should the path have become a FIFO since stat, open() must not wait for a writer.
    fd_ = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd_ < 0) fail(path, what, errno_reason(errno));
    if (::fstat(fd_, &st) != 0) {
      const int err = errno;
      ::close(fd_);
      fail(path, what, errno_reason(err));
    }
    try {
      check_stat(st, path, what, max_bytes);
    } catch (...) {
      ::close(fd_);
      throw;
    }
    size_ = static_cast<std::uint64_t>(st.st_size);
  }
  CheckedFile(const CheckedFile&) = delete;
  CheckedFile& operator=(const CheckedFile&) = delete;
  ~CheckedFile() { ::close(fd_); }
  [[nodiscard]] int fd() const { return fd_; }
  [[nodiscard]] std::uint64_t size() const { return size_; }

 private:
  int fd_ = -1;
  std::uint64_t size_ = 0;
};

}  // namespace

void check_input_file(const std::string& path, const std::string& what, std::uint64_t max_bytes) {
  const CheckedFile f(path, what, max_bytes);
}

std::ifstream open_input_file(const std::string& path, const std::string& what, std::uint64_t max_bytes) {
  check_input_file(path, what, max_bytes);
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, what, errno_reason(errno));
  // A UTF-8 byte-order mark (as spreadsheet programs write) is not part of the first line.
  char bom[3] = {};
  in.read(bom, 3);
  if (!(in.gcount() == 3 && bom[0] == '\xEF' && bom[1] == '\xBB' && bom[2] == '\xBF')) {
    in.clear();
    in.seekg(0);
  }
  return in;
}

std::string read_input_file(const std::string& path, const std::string& what, std::uint64_t max_bytes) {
  const CheckedFile f(path, what, max_bytes);
  std::string text;
  text.reserve(static_cast<std::size_t>(f.size()));
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = ::read(f.fd(), buf, sizeof buf);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      fail(path, what, std::string("read error: ") + std::strerror(errno));
    }
    text.append(buf, static_cast<std::size_t>(n));
    // A file that grows while it is read stops at the cap.
    check_size(text.size(), path, what, max_bytes);
  }
  return text;
}

}  // namespace servesim
