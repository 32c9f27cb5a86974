"""Generate the HDF5 / NetCDF-4 fixtures for `crates/codec/tests/hdf5.rs`.

Run with a Python that has numpy, h5py and netCDF4 (fixtures committed were made with
h5py 3.16 / HDF5 2.0.0 and netCDF4-python 1.7.5, from PyPI):

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install numpy h5py netCDF4
    /tmp/venv/bin/python crates/codec/tests/data/hdf5/make_fixtures.py

Each fixture `NAME.h5` (or `.nc`) gets a `NAME.json` next to it listing every dataset
as the HDF5 library sees it: item size, layout, filter count, and the byte ranges of
its raw data (`get_offset`/`get_storage_size` for contiguous datasets, `get_chunk_info`
for chunked ones). `expect` says whether the Strata parser should report typed regions
for it: contiguous or unfiltered chunked with allocated storage and an element size of
1, 2, 4 or 8 bytes of a simple class.
"""

import json
import os

import h5py
import netCDF4
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(7)


def smooth(shape, dtype):
    """Compressible but not trivial data."""
    n = int(np.prod(shape))
    x = np.cumsum(rng.normal(size=n)).reshape(shape)
    return (x * 10).astype(dtype)


def describe(path):
    out = []
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            if not isinstance(obj, h5py.Dataset):
                return
            dcpl = obj.id.get_create_plist()
            layout = {0: "compact", 1: "contiguous", 2: "chunked"}.get(dcpl.get_layout(), "other")
            nfilters = dcpl.get_nfilters()
            ranges = []
            if layout == "contiguous":
                off = obj.id.get_offset()
                if off is not None:
                    ranges.append([off, obj.id.get_storage_size()])
            elif layout == "chunked":
                for i in range(obj.id.get_num_chunks()):
                    info = obj.id.get_chunk_info(i)
                    ranges.append([info.byte_offset, info.size])
            kind = obj.dtype.kind
            simple = kind in "iufb" and obj.dtype.itemsize in (1, 2, 4, 8)
            out.append({
                "name": name,
                "itemsize": obj.dtype.itemsize,
                "dtype": str(obj.dtype),
                "layout": layout,
                "nfilters": nfilters,
                "ranges": ranges,
                "expect": bool(simple and ranges and nfilters == 0
                               and layout in ("contiguous", "chunked")),
            })
        f.visititems(visit)
    with open(path, "rb") as fh:
        data = fh.read()
    return {"file_size": len(data), "datasets": out}


def write_json(path):
    with open(os.path.splitext(path)[0] + ".json", "w") as fh:
        json.dump(describe(path), fh, indent=1)
        fh.write("\n")


def compact(f, name, data):
    """A compact-layout dataset (h5py has no keyword for it)."""
    space = h5py.h5s.create_simple(data.shape)
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_layout(h5py.h5d.COMPACT)
    tid = h5py.h5t.py_create(data.dtype)
    dsid = h5py.h5d.create(f.id, name.encode(), tid, space, dcpl=dcpl)
    dsid.write(h5py.h5s.ALL, h5py.h5s.ALL, data)


def v0():
    path = os.path.join(HERE, "v0_contiguous.h5")
    with h5py.File(path, "w", libver="earliest") as f:
        f.create_dataset("temp", data=smooth((100, 50), "f4"))
        f.create_dataset("pressure", data=smooth((40, 30), "f8"))
        f.create_dataset("counts", data=smooth((200,), "i2"))
        g = f.create_group("grp")
        g.create_dataset("ids", data=np.arange(300, dtype="i8"))
        s = g.create_group("sub")
        s.create_dataset("flags", data=(np.arange(500) % 7).astype("u1"))
        s.create_dataset("tiles", data=smooth((64, 64), "f4"), chunks=(16, 32))
        f.create_dataset("empty", shape=(1000,), dtype="f4")  # never written: no storage
        f.create_dataset("names", data=np.array([b"ab", b"cd"], dtype=object),
                         dtype=h5py.string_dtype("ascii"))
        compact(f, "small", smooth((10,), "f4"))
        f["grp/alias"] = f["temp"]  # second hard link: no duplicate regions
    write_json(path)


def v2():
    path = os.path.join(HERE, "v2_chunked.h5")
    with h5py.File(path, "w", libver=("v108", "v108")) as f:
        f.create_dataset("temp", data=smooth((60, 70), "f4"))
        f.create_dataset("grid", data=smooth((50, 40), "i4"), chunks=(20, 16))
        g = f.create_group("g")
        g.create_dataset("wind", data=smooth((30, 30), "f8"), chunks=(10, 30))
        g.create_dataset("level", data=smooth((256,), "u2"))
    write_json(path)


def v3():
    path = os.path.join(HERE, "v3_latest.h5")
    with h5py.File(path, "w", libver="latest") as f:
        f.create_dataset("temp", data=smooth((50, 50), "f8"))
        f.create_dataset("counts", data=smooth((1000,), "i2"))
        f.create_group("g").create_dataset("x", data=smooth((400,), "f4"))
        f.create_dataset("tiles", data=smooth((40, 40), "f4"), chunks=(20, 20))
    write_json(path)


def gzip():
    path = os.path.join(HERE, "gzip_chunked.h5")
    with h5py.File(path, "w", libver="earliest") as f:
        f.create_dataset("packed", data=smooth((100, 100), "f4"), chunks=(25, 100),
                         compression="gzip", compression_opts=4)
        f.create_dataset("shuffled", data=smooth((64, 64), "i4"), chunks=(32, 32),
                         shuffle=True)
        f.create_dataset("plain", data=smooth((50, 50), "f4"))
    write_json(path)


def userblock():
    path = os.path.join(HERE, "userblock.h5")
    with h5py.File(path, "w", libver="earliest", userblock_size=512) as f:
        f.create_dataset("temp", data=smooth((30, 40), "f4"))
        f.create_dataset("tiles", data=smooth((32, 32), "i2"), chunks=(16, 16))
    with open(path, "r+b") as fh:
        fh.write(b"user block text\n")
    write_json(path)


def nc4():
    path = os.path.join(HERE, "ocean_nc4.nc")
    with netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
        ds.createDimension("lat", 36)
        ds.createDimension("lon", 72)
        lat = ds.createVariable("lat", "f4", ("lat",))
        lon = ds.createVariable("lon", "f4", ("lon",))
        sst = ds.createVariable("sst", "f8", ("lat", "lon"))
        lat[:] = np.linspace(-87.5, 87.5, 36)
        lon[:] = np.linspace(0, 355, 72)
        sst[:] = smooth((36, 72), "f8")
        sst.units = "K"
    write_json(path)


if __name__ == "__main__":
    v0()
    v2()
    v3()
    gzip()
    userblock()
    nc4()
    for name in sorted(os.listdir(HERE)):
        if name.endswith(".json"):
            with open(os.path.join(HERE, name)) as fh:
                d = json.load(fh)
            print(name, d["file_size"], [(x["name"], x["layout"], len(x["ranges"]), x["expect"])
                                         for x in d["datasets"]])
