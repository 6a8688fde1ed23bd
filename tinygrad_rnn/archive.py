"""The ``.npz`` archive under a checkpoint: written atomically, read member by member with every size checked.

Writing: the archive goes to a hidden file beside the target, ``.<target>.<pid>.<random>.tmp``,
which is synced and renamed over the target, so a crash leaves the old file whole. A process
killed while writing leaves its temporary file behind; the next save to the same target removes
those whose process is gone. The temporary file is created with mode 0o666, which the system
narrows by the umask as for any new file, so the finished file needs no chmod.

Reading: only uncompressed ``.npy`` members (what ``np.savez`` writes), each read when asked for.
Before anything is allocated, a member's header (shape and dtype) must account for exactly the
bytes the member holds, and the member must lie inside the file; its CRC is checked as it is read.
Python objects are never unpickled.
"""
import contextlib
import math
import os
import re
import secrets
import struct
import zipfile

import numpy as np

NPY = ".npy"
MAX_HEADER_SIZE = 10_000  # NumPy's own limit for the text header of an .npy member


class MalformedArchive(ValueError):
    """A file that is not an intact archive of this format; the message says what is wrong."""


# ---------------------------------------------------------------- where files go


def check_output_folder(path):
    """Raise ValueError unless ``path`` is a folder, or can be created as one, that takes new files."""
    path = os.path.abspath(os.fspath(path))
    existing = path
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        if existing == path:
            raise ValueError(f"{path} is a file, not a folder")
        raise ValueError(f"cannot create the folder {path}: {existing} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"cannot write into {existing}: permission denied")


def check_output_file(path):
    """Raise ValueError unless a file can be written at ``path`` (its folder may still be missing)."""
    if os.path.isdir(path):
        raise ValueError(f"{os.fspath(path)} is a folder, not a file")
    try:
        check_output_folder(os.path.dirname(os.path.abspath(path)))
    except ValueError as error:
        raise ValueError(f"cannot write {os.fspath(path)}: {error}") from None


def prepare_output_file(path):
    """Check ``path`` as :func:`check_output_file` does and create its folder, before any work is done."""
    check_output_file(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)


# ---------------------------------------------------------------- writing


def _temp_pattern(base):
    """The names of this module's temporary files for target ``base``: with the writer's pid, and the
    pid-less names that tempfile.mkstemp gave them before."""
    return re.compile(re.escape(f".{base}.") + r"(?:(\d+)\.[0-9a-f]{8}|[a-z0-9_]{8})\.tmp")


def _process_alive(pid):
    if pid == os.getpid():
        return True  # another thread of this process may be writing it
    if os.name != "posix":
        return True  # no safe way to ask (os.kill would end the process): keep the file
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OverflowError, ValueError):
        return False  # no process can have that number
    except OSError:
        return True  # it exists, owned by someone else
    return True


def remove_stale_temporary_files(path):
    """Delete the temporary files that writers to ``path`` left when they were killed; returns their names."""
    directory, base = os.path.split(os.path.abspath(os.fspath(path)))
    pattern = _temp_pattern(base)
    removed = []
    with contextlib.suppress(OSError):
        names = os.listdir(directory)
        for name in names:
            match = pattern.fullmatch(name)
            if match and (match.group(1) is None or not _process_alive(int(match.group(1)))):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(directory, name))
                    removed.append(name)
    return removed


def _create_temporary_file(directory, base):
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        path = os.path.join(directory, f".{base}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(path, flags, 0o666), path
        except FileExistsError:
            continue


def _fsync_directory(directory):
    """Make the rename itself durable; platforms that cannot open a directory skip this."""
    if hasattr(os, "O_DIRECTORY"):
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_npz(path, arrays):
    """Write ``arrays`` (name -> array) as an npz beside ``path`` and rename it over ``path``.

    ``path`` may also be a binary file object open for writing (as torch.save takes one): the npz is
    written into it, and whoever opened it decides where it lands.
    """
    if hasattr(path, "write"):
        np.savez(path, **arrays)
        return
    path = os.fspath(path)
    directory, base = os.path.split(os.path.abspath(path))
    remove_stale_temporary_files(path)
    fd, temp_path = _create_temporary_file(directory, base)
    try:
        with os.fdopen(fd, "wb") as file:
            np.savez(file, **arrays)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp_path, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp_path)
        raise
    _fsync_directory(directory)


# ---------------------------------------------------------------- reading

# what zipfile and NumPy's header parser raise on bytes that are not what they should be
_PARSE_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError, NotImplementedError,
                 struct.error, OverflowError, IndexError, KeyError, OSError)


class NpzReader:
    """An npz file opened for reading; ``read(name)`` returns one member's array.

    ``source`` is a path or a binary file object open for reading (which stays open). Opening a path
    raises FileNotFoundError, PermissionError or IsADirectoryError as ``open`` does; anything that
    is not an intact archive of ``.npy`` members raises MalformedArchive.
    """

    def __init__(self, source):
        self._owned = not hasattr(source, "read")
        self.path = os.fspath(source) if self._owned else getattr(source, "name", "<file object>")
        self._file = open(self.path, "rb") if self._owned else source  # noqa: SIM115 (closed by close())
        try:
            self._size = self._file.seek(0, os.SEEK_END)
            self._file.seek(0)
            self._zip = zipfile.ZipFile(self._file)
            infos = self._zip.infolist()
        except _PARSE_ERRORS as error:
            self.close()
            raise MalformedArchive(f"it is not an npz (zip) archive, or it is truncated ({error})") from None
        self._members = {}
        for info in infos:
            if not info.filename.endswith(NPY):
                self.close()
                raise MalformedArchive(f"its member {info.filename!r} is not an array ({NPY})")
            name = info.filename[:-len(NPY)]
            if name in self._members:
                self.close()
                raise MalformedArchive(f"it holds two members named {info.filename!r}")
            self._members[name] = info

    @property
    def names(self):
        return list(self._members)

    def __contains__(self, name):
        return name in self._members

    def read(self, name):
        """The array of member ``name``: a new, writable array, its bytes checked as described above."""
        info = self._members.get(name)
        if info is None:
            raise MalformedArchive(f"it has no member {name + NPY!r}")
        self._check_extent(info)
        try:
            with self._zip.open(info) as member:
                shape, fortran_order, dtype = self._read_header(member, info)
                return self._read_data(member, info, shape, fortran_order, dtype)
        except MalformedArchive:
            raise
        except _PARSE_ERRORS as error:
            where = "" if info.filename in str(error) else f"member {info.filename!r}: "
            raise MalformedArchive(f"{where}{error}") from None

    def _check_extent(self, info):
        if info.compress_type != zipfile.ZIP_STORED:
            raise MalformedArchive(f"member {info.filename!r} is compressed; checkpoints store arrays as they are")
        if info.file_size != info.compress_size or info.header_offset + info.compress_size > self._size:
            raise MalformedArchive(f"member {info.filename!r} claims {info.file_size:,} bytes at offset "
                                   f"{info.header_offset:,}, which a {self._size:,}-byte file cannot hold")

    @staticmethod
    def _read_header(member, info):
        version = np.lib.format.read_magic(member)
        readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
        if version not in readers:
            raise MalformedArchive(f"member {info.filename!r} is an .npy file of version {version}, "
                                   f"which this reader does not take")
        shape, fortran_order, dtype = readers[version](member, max_header_size=MAX_HEADER_SIZE)
        if any(d < 0 for d in shape):
            raise MalformedArchive(f"member {info.filename!r} declares the negative shape {shape}")
        if dtype.hasobject:
            raise MalformedArchive(f"member {info.filename!r} holds Python objects, which are never unpickled")
        if dtype.itemsize == 0:
            raise MalformedArchive(f"member {info.filename!r} declares the empty dtype {dtype}")
        return shape, fortran_order, dtype

    @staticmethod
    def _read_data(member, info, shape, fortran_order, dtype):
        count = math.prod(shape)
        declared, held = count * dtype.itemsize, info.file_size - member.tell()
        if declared != held:
            raise MalformedArchive(f"member {info.filename!r} declares shape {shape} of {dtype} ({declared:,} "
                                   f"bytes) but holds {held:,} bytes")
        buffer = bytearray(declared)
        view, filled = memoryview(buffer), 0
        while filled < declared:
            got = member.readinto(view[filled:])
            if not got:
                raise MalformedArchive(f"member {info.filename!r} ends early")
            filled += got
        if member.read(1):  # also where zipfile compares the CRC
            raise MalformedArchive(f"member {info.filename!r} is longer than its header says")
        array = np.frombuffer(buffer, dtype=dtype, count=count)
        return array.reshape(shape, order="F" if fortran_order else "C")

    def close(self):
        if hasattr(self, "_zip"):
            self._zip.close()
        if self._owned:
            self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
