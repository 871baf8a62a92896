"""Messages the dashboard's widgets send up to the app."""

from __future__ import annotations

from textual.message import Message


class ClusterChosen(Message):
    """The user chose a cluster (in the table, the tree or the map).

    Attributes:
        cluster_id: The cluster chosen.
    """

    def __init__(self, cluster_id: str) -> None:
        super().__init__()
        self.cluster_id = cluster_id
