"""Storage backends behind one small interface (see ``base``)."""

from nodeos.api.store.base import EventType, KeyValue, Store, StoreEvent

__all__ = ["EventType", "KeyValue", "Store", "StoreEvent"]
