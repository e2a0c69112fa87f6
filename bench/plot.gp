# bench/plot.gp - prefixes held by the slowest monitor over time, one line per
# daemon, for one scenario; drawn by bench/run-scenarios.py as PNG and SVG.
# Variables (gnuplot -e): files='a.tl b.tl'  titles='ricochetd bird'
#                         outbase='dir/plot-S1'  scen='S1: ...'
# Timeline files are ricochet-load --timeline output: "t_seconds prefixes".
if (!exists("files"))   files = "timeline.tl"
if (!exists("titles"))  titles = files
if (!exists("outbase")) outbase = "plot"
if (!exists("scen"))    scen = ""

set title scen noenhanced
set xlabel "seconds since the first UPDATE byte was sent"
set ylabel "prefixes at the slowest monitor"
set key bottom right noenhanced
set grid
set format y "%.1s%c"       # 1.5M, not a second "2M"
set style data steps
set linetype 1 lc rgb "#d62728" lw 2.5
set linetype 2 lc rgb "#1f77b4" lw 2
set linetype 3 lc rgb "#2ca02c" lw 2
set linetype 4 lc rgb "#9467bd" lw 2
set linetype 5 lc rgb "#7f7f7f" lw 1.5 dt 2

set terminal pngcairo size 1000,600 font "sans,11"
set output outbase.".png"
plot for [i=1:words(files)] word(files, i) using 1:2 title word(titles, i)

set terminal svg size 1000,600 dynamic font "sans,11"
set output outbase.".svg"
replot
set output
