"""Where tracks and their audio come from: Spotify, Deezer and local folders.

The crawler agent calls :class:`sources.crawler.PlaylistCrawler`; the audio agent calls
:class:`sources.download.AudioFetcher`. Nothing here touches Kafka, Cassandra or S3.
"""
