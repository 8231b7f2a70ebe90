"""Hogwild! from inside a Jupyter kernel, executed headless by papermill."""
import nbformat
import papermill

CELLS = [
    # parameters
    "subset = 600\nprocesses = 2",
    # the kernel has already run autograd before the workers are spawned
    "import torch\nfrom costtrain.data.datasets import load_dataset\nfrom costtrain.data.models import MLP\n"
    "net = MLP()\nds = load_dataset(subset=subset, test_subset=200)\n"
    "net(ds.train_x[:16]).sum().backward()",
    "from costtrain.hogwild import train_hogwild\n"
    "r = train_hogwild(net, ds, processes=processes, threads=1, progress=True)\n"
    "assert r.status == 'ok' and r.samples == processes * subset, r\n"
    "print('HOGWILD-SAMPLES', r.samples, sorted(r.worker_curves))",
    # the original API, its log lines printed in the cell (not in the kernel's terminal)
    "from torch.utils.data import DataLoader\nfrom costtrain.data.datasets import tensor_dataset\n"
    "from costtrain.hogwild import train_model\n"
    "losses = train_model(MLP(), DataLoader(tensor_dataset(ds), batch_size=64, shuffle=True), 2, 1,"
    " None, log_interval=2, test_dataloader=DataLoader(tensor_dataset(ds, 'test'), batch_size=100))\n"
    "print('LEGACY-LOSSES', len(losses))",
    # a model class defined in the notebook cannot reach spawned workers: a clear error
    "from costtrain.utils import CosttrainError\n"
    "class NotebookNet(torch.nn.Module):\n"
    "    def __init__(self):\n        super().__init__()\n        self.fc = torch.nn.Linear(784, 10)\n"
    "    def forward(self, x):\n        return self.fc(x.flatten(1))\n"
    "try:\n    train_hogwild(NotebookNet(), ds, processes=2, threads=1)\n"
    "except CosttrainError as exc:\n    print('CLEAR-ERROR', exc)",
]


def test_hogwild_runs_inside_a_papermill_notebook(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(src) for src in CELLS]
    nb.cells[0].metadata["tags"] = ["parameters"]
    src, out = tmp_path / "hogwild.ipynb", tmp_path / "hogwild.out.ipynb"
    nbformat.write(nb, src)
    papermill.execute_notebook(str(src), str(out), kernel_name="python3", cwd=str(tmp_path),
                               parameters={"subset": 500}, progress_bar=False)
    text = "\n".join(o.get("text", "") for c in nbformat.read(out, as_version=4).cells
                     for o in c.get("outputs", []) if o.get("output_type") == "stream")
    assert "HOGWILD-SAMPLES 1000 ['0', '1']" in text
    assert "process 1  epoch 1" in text and "Test set: Average loss" in text
    assert "LEGACY-LOSSES" in text
    assert "CLEAR-ERROR" in text and "defined in this notebook" in text
