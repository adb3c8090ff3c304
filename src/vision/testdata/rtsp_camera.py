#!/usr/bin/python3
"""A real RTSP camera for the vision tests: GStreamer's RTSP server (gst-rtsp-server, from
Debian) streams a packaged photo as Motion-JPEG over RTP at 5 frames/s on loopback.
Usage: rtsp_camera.py PHOTO PORT  (PORT 0: any free port). Prints the bound port, then serves
until killed. Not a fake: the service under test talks RTSP/RTP to it through FFmpeg."""
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main():
    photo, port = sys.argv[1], sys.argv[2]
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    # jpegdec ! jpegenc re-encodes to the baseline JPEG that RTP/JPEG (RFC 2435) can carry.
    factory.set_launch(
        f"( multifilesrc location={photo} loop=true caps=image/jpeg,framerate=5/1 "
        "! jpegdec ! videoconvert ! jpegenc ! rtpjpegpay name=pay0 pt=26 )")
    factory.set_shared(True)
    server.get_mount_points().add_factory("/cam", factory)
    if server.attach(None) == 0:
        sys.exit(f"rtsp_camera: cannot listen on 127.0.0.1:{port}")
    print(server.get_bound_port(), flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
