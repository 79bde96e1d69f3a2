"""What the console knows about its devices and how it reaches them.

:mod:`.connect` turns a stored device into a ready :class:`~outband.client.AmtClient` (credentials decrypted
only in memory) and checks a device before it is added; :mod:`.repository` holds the queries (filters,
selections of devices by id, name, tag or group); :mod:`.discovery` scans address ranges; :mod:`.importer`
reads CSV files of devices.
"""
