set terminal pngcairo size 1600,950 font 'sans,9'
set output 'chart.png'
set datafile missing '?'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set xtics rotate by -30 nomirror
set grid ytics
set key inside opaque
set multiplot layout 2,3 title "linesman e2e benchmark, 2026-11-26 16:05 UTC, medians of 3 round(s), loopback, 2 CPUs"
set logscale y
set yrange [*:*]
set key top left
set title "bulk 1 stream: forwarder CPU s per GB (log, lower is better)"
plot 'chart.dat' using 2:xtic(1) title '1 thread', '' using 3 title '2 threads'
unset logscale y
set yrange [0:*]
set key top right
set title "bulk 1 stream: Gbit/s (higher is better)"
plot 'chart.dat' using 4:xtic(1) title '1 thread', '' using 5 title '2 threads'
set logscale y
set yrange [*:*]
set key top left
set title "short connections: CPU us per conn (log, lower is better)"
plot 'chart.dat' using 6:xtic(1) title '1 thread', '' using 7 title '2 threads'
unset logscale y
set yrange [0:*]
set key top right
set title "short connections per second (higher is better)"
plot 'chart.dat' using 8:xtic(1) title '1 thread', '' using 9 title '2 threads'
set logscale y
set yrange [*:*]
set key top left
set title "idle connection: Pss bytes per conn (log, lower is better)"
plot 'chart.dat' using 10:xtic(1) title '1 thread', '' using 11 title '2 threads'
set logscale y
set yrange [*:*]
set key top left
set title "TLS short connections: CPU us per conn (log, lower is better)"
plot 'chart.dat' using 12:xtic(1) title '1 thread', '' using 13 title '2 threads'
unset multiplot
