"""Prints sectors of a disk or image as a hex dump, through DirectAccess.

``python sector_reader.py DEVICE [FIRST_SECTOR [COUNT]]`` (as root). fsgate must be
installed for the product GUID ($FSGATE_PRODUCT_GUID, else the command line's):
``fsgate package fsgate.pkg && fsgate install fsgate.pkg --product-guid GUID``.
"""

import os
import sys

import fsgate

GUID = os.environ.get("FSGATE_PRODUCT_GUID", "{F5A7E0C1-2B3D-4E5F-8A9B-0C1D2E3F4A5B}")


def dump(device: str, first: int, count: int) -> None:
    direct = fsgate.CBDirect()
    direct.initialize(GUID)
    with direct.open_volume(device, fsgate.GENERIC_READ, False) as volume:
        size = direct.get_sector_size(volume)
        count = min(count, direct.get_sector_count(volume) - first)
        buffer = bytearray(count * size)  # read_sectors fills a bytearray in place
        direct.read_sectors(volume, first, count, buffer)
    for offset in range(0, len(buffer), 16):
        row = buffer[offset : offset + 16]
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in row)
        print(f"{first * size + offset:010x}  {row.hex(' ')}  {text}")


if __name__ == "__main__":
    try:
        dump(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 0,
             int(sys.argv[3]) if len(sys.argv) > 3 else 1)
    except fsgate.FsgateError as e:
        sys.exit(f"sector_reader: {e}")
