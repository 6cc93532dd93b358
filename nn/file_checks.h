#pragma once
// Checks of the paths a command reads and writes, made before any work starts: a missing file, a
// directory, a special file (a FIFO, /dev/zero), a symlink loop, a permission or a read-only file
// system is found while the user is still watching, not after hours of training. Every error is a
// tg::Error starting with the flag that gave the path ("--log: ...") and naming the path.
#include <string>

namespace tg {

/// `path` must be a regular file (symlinks followed) that this process can open for reading.
/// `flag` may be empty: the message then starts with "cannot read PATH".
void check_input_file(const std::string& path, const std::string& flag);

/// `path` must be a directory (symlinks followed) that this process can list and read from.
void check_input_dir(const std::string& path, const std::string& flag);

/// `path` must be writable as a new or replaced regular file: not a directory or special file, in
/// an existing directory where a probe file can be created and removed. Nothing is left behind.
void check_output_file(const std::string& path, const std::string& flag);

/// Whether the path `a` names the file or directory `b`, or something inside the directory `b`
/// (symlinks and `..` resolved; neither need exist yet). An output that is also an input, or
/// lies inside a checkpoint directory, would destroy it.
bool same_or_inside(const std::string& a, const std::string& b);

/// strerror(err), with what the common codes mean for a path ("a symlink loop", ...).
std::string describe_path_error(int err);

}  // namespace tg
