"""Storage backends behind one small interface (see ``base``): ``sqlite``, embedded
and the default, and ``etcd``, which several masters share (``etcd.EtcdStore``)."""

from nodeos.api.store.base import EventType, KeyValue, Store, StoreEvent

__all__ = ["EventType", "KeyValue", "Store", "StoreEvent"]
