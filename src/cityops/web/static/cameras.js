/* cityops — camera thumbnails: every few seconds, reload each <img data-camera-thumb> (the list, a camera page, the
   wall's cameras view). The server caches pictures for a few seconds; a failed picture is tried again next round. */
(function () {
  "use strict";
  var EVERY = 5000;
  function refresh() {
    var images = document.querySelectorAll("img[data-camera-thumb]");
    for (var i = 0; i < images.length; i += 1) {
      var img = images[i];
      var base = img.getAttribute("src").split("?")[0];
      img.setAttribute("src", base + "?t=" + Date.now());
    }
  }
  if (!window.cityopsCameraThumbs) {
    window.cityopsCameraThumbs = setInterval(refresh, EVERY);
  }
}());
