"""What every route of the gateway works with, built once per app and reached through `gateway()`."""

from dataclasses import dataclass

import gridfs
from flask import current_app
from pymongo.database import Database

from common import storage
from common.broker import Publisher
from common.jobs import Jobs
from common.removal import JobDeletion
from common.settings import GatewaySettings
from gateway.auth_client import AuthClient
from gateway.login_limit import LoginLimit
from gateway.places import Places

EXTENSION = "mp3converter.gateway"


@dataclass(frozen=True)
class GatewayDeps:
    settings: GatewaySettings
    db: Database
    jobs: Jobs
    deletion: JobDeletion
    videos: gridfs.GridFSBucket
    mp3s: gridfs.GridFSBucket
    publisher: Publisher
    auth: AuthClient
    login_limit: LoginLimit
    streams: Places
    uploads: Places

    @classmethod
    def build(cls, settings: GatewaySettings, db: Database, publisher: Publisher, auth: AuthClient) -> "GatewayDeps":
        return cls(settings=settings, db=db, jobs=Jobs(db), deletion=JobDeletion(db),
                   videos=storage.bucket(db, storage.VIDEOS), mp3s=storage.bucket(db, storage.MP3S),
                   publisher=publisher, auth=auth,
                   login_limit=LoginLimit(settings.login_attempts_per_client, settings.trusted_proxies),
                   streams=Places(settings.max_event_streams_per_user),
                   uploads=Places(settings.max_uploads_in_flight))


def gateway() -> GatewayDeps:
    """The current app's GatewayDeps (inside a request)."""
    return current_app.extensions[EXTENSION]
