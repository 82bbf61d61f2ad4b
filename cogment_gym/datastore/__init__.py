"""Recorded trials: a datalog service writing trial files, the datastore serving them back, and
replay of what they hold (docs/datasets.md).

    from cogment_gym.datastore import serve_datalog, episodes
    with serve_datalog("recorded") as datalog:          # cogmentAPI.DatalogSP + TrialDatastoreSP
        env = CogmentEnv("CartPole-v1", datalog=datalog.endpoint)
        ...
    for episode in episodes("recorded"):                  # no Minari needed
        for obs, action, reward, terminated, truncated, info in episode.steps():
            ...
"""

from cogment_gym.datastore.datalog_service import DatalogServicer
from cogment_gym.datastore.datastore_service import TrialDatastoreServicer
from cogment_gym.datastore.fileformat import FILE_SUFFIX, FORMAT_VERSION, MAGIC, TrialFile, TrialFileWriter, read_trial_file
from cogment_gym.datastore.replay import Episode, IncompleteTrialWarning, RecordedTrial, episodes, trial_files, trials
from cogment_gym.datastore.server import DatalogServer, TrialRecorder, serve_datalog, serve_datalog_forever
from cogment_gym.datastore.store import StoredTrial, TrialStore

__all__ = [
    "FILE_SUFFIX",
    "FORMAT_VERSION",
    "MAGIC",
    "DatalogServer",
    "DatalogServicer",
    "Episode",
    "IncompleteTrialWarning",
    "RecordedTrial",
    "StoredTrial",
    "TrialDatastoreServicer",
    "TrialFile",
    "TrialFileWriter",
    "TrialRecorder",
    "TrialStore",
    "episodes",
    "read_trial_file",
    "serve_datalog",
    "serve_datalog_forever",
    "trial_files",
    "trials",
]
