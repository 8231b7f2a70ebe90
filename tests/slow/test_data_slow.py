"""The shared data mapped into real worker processes (the slow half of test_data.py)."""
from costtrain.data.datasets import load_dataset


def test_share_memory_maps_the_data_in_workers_outside_dev_shm(idx_dir):
    """The workers write into the parent's pages (shared, not copied), and torch's /dev/shm
    sharing is not used for the data (a container's 64 MB there would not hold it)."""
    from costtrain.run import _testing, procs, shared
    ds = load_dataset("mnist", idx_dir).share_memory_()
    if not shared.AVAILABLE:
        assert ds.train_x.is_shared()
        return
    assert isinstance(ds.train_x, shared.SharedTensor) and not ds.train_x.is_shared()
    assert procs.run_workers(_testing.fill, [(ds.train_y, 0.0), (ds.test_x, 3.0)]) == [
        float(ds.train_y.sum()), float(ds.test_x.sum())]
    assert ds.train_y[0] == 0 and ds.test_x.view(-1)[0] == 3.0
