/* picklematrix's additions to asv 0.6.6's graph page (a flot plugin; asv_site.add_graph_fixes loads it).

   1. A benchmark parameter as x axis (the matrix page links with x-axis=method: one case, every env side by
      side) draws nothing in asv 0.6.6: asv gives each series bars.order for flot-orderbars, which computes its
      bar offset from the raw x values; with category names they are strings, the offset is NaN, and so is every
      bar's x. Here the ordering is taken from orderbars and done after flot's categories plugin has turned the
      names into numbers.
   2. The legend (one entry per env and context: ~80 in a full profile) is drawn over the plot, hiding it. It
      goes into a column of its own, right of the plot.
   3. A graph opened without an x axis in its URL (from asv's grid or list) gets DEFAULT_X_AXIS, set by the
      report when the results hold one harness commit: asv's default, the commits, is then one column of points.
      Choosing "commit" in asv's x-axis panel puts it in the URL, and it stays.
*/
(function ($) {
  "use strict";
  var DEFAULT_X_AXIS = null;

  function defaultView() {
    var m = /^#([A-Za-z_][\w.]*\.[\w]+)(\?.*)?$/.exec(location.hash);
    if (!DEFAULT_X_AXIS || !m || /[?&]x-axis=/.test(location.hash)) return;
    location.replace(location.hash + (m[2] ? "&" : "?") + "x-axis=" + encodeURIComponent(DEFAULT_X_AXIS));
  }
  defaultView();  // before asv reads the URL on document ready
  window.addEventListener("hashchange", defaultView);

  function isMain(plot) { return plot.getPlaceholder().attr("id") === "main-graph"; }

  function init(plot) {
    plot.hooks.processOptions.push(function (plot, options) {
      // the outermost bars, shifted off their category's centre, would end on the plot's border
      if (options.xaxis.mode === "categories" && options.xaxis.autoscaleMargin == null) options.xaxis.autoscaleMargin = 0.08;
      if (!isMain(plot) || !options.legend.show) {
        $("#graph").removeClass("pm-with-legend");
        return;
      }
      var box = $("#pm-legend");
      if (!box.length) box = $('<div id="pm-legend" aria-label="legend"></div>').appendTo("#graph");
      box.empty();
      $("#graph").addClass("pm-with-legend");  // narrows the plot before flot measures it
      options.legend.container = box;
    });
    plot.hooks.processRawData.push(function (plot, series) {
      if (series.xaxis.options.mode === "categories" && series.bars && series.bars.show && series.bars.order != null) {
        series.pmOrder = series.bars.order;
        series.bars.order = null;  // flot-orderbars leaves it alone
      }
    });
    plot.hooks.processDatapoints.push(function (plot, series, datapoints) {
      if (series.pmOrder == null) return;
      var n = plot.getData().length, width = series.bars.barWidth;
      var dx = (series.pmOrder - (n - 1) / 2) * width;
      for (var i = 0; i < datapoints.points.length; i += datapoints.pointsize) {
        if (datapoints.points[i] != null) datapoints.points[i] += dx;
      }
    });
  }

  $.plot.plugins.push({init: init, options: {}, name: "picklematrix-asv", version: "1.0"});
})(jQuery);
